"""The one asyncio event loop per process that every MCP connection lives on.

The SDK is async and its transports are anyio context managers that must be
entered and exited in the same task, so each connection is held open by a
long-lived task on this loop and callers reach it from any thread with
``asyncio.run_coroutine_threadsafe``. The loop thread starts on first use,
never at import, and is made again in a forked child (gunicorn forks workers
after the master may have used it; the parent's thread does not exist there).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import weakref
from typing import Any, Coroutine, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
EXIT_STOP_TIMEOUT = 10.0  # per connection, at interpreter exit


class Stoppable(Protocol):
    def stop(self, timeout: float = ...) -> None: ...


class LoopThread:
    """An event loop running forever in a daemon thread, owned by one process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.connections: weakref.WeakSet[Stoppable] = weakref.WeakSet()
        self._thread = threading.Thread(target=self._run, name="mcp-event-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop; the returned future is safe to wait on from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, callback: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)


_current: LoopThread | None = None
_lock = threading.Lock()


def event_loop() -> LoopThread:
    """This process's loop thread, started on first use (and again after a fork)."""
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid():
            first = _current is None
            _current = LoopThread()
            log.debug("mcp event loop started in pid %d", _current.pid)
            if first:
                atexit.register(_stop_all_at_exit)
        return _current


def _stop_all_at_exit() -> None:
    """Last line of defence against orphans when nobody called ``ExtensionRegistry.close``."""
    current = _current
    if current is None or current.pid != os.getpid():
        return
    for connection in list(current.connections):
        connection.stop(EXIT_STOP_TIMEOUT)


def _reset_after_fork() -> None:
    # The lock may have been held by another thread at fork time; the child gets a fresh one.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
