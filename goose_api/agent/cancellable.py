"""Blocking work (a provider call, a tool call) that a turn can stop waiting for.

``requests`` cannot interrupt a call in flight, and a turn must notice a
cancel at once, so the work runs on its own daemon thread and hands what it
emits (stream events, tool notifications) and, last, its result to the turn's
thread through a queue. The turn waits on that queue in short slices and looks
at its cancel event in between: a cancelled turn abandons the work at once.
The thread ends on its own (the provider answers, the read timeout fires, the
tool call sees the same cancel event) and what it produces is dropped.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Generator

WAIT_SLICE = 0.05  # how often a waiting turn looks at its cancel event

Emit = Callable[[Any], None]


class TurnCancelled(Exception):
    """The turn was asked to stop; raised at its next step."""


def cancellable_call(work: Callable[[Emit], Any], cancel: threading.Event, name: str) -> Generator[Any, None, Any]:
    """Yield what ``work`` emits as it emits it; return what ``work`` returns.

    Raises:
        TurnCancelled: ``cancel`` was set before the work ended (it is abandoned).
        Exception: whatever ``work`` raised, in the caller's thread.
    """
    channel: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            channel.put(("result", work(lambda item: channel.put(("item", item)))))
        except BaseException as exc:  # re-raised in the waiting thread
            channel.put(("error", exc))

    threading.Thread(target=run, name=name, daemon=True).start()
    while True:
        try:  # what already arrived is used even after a cancel: the step it ends did happen
            kind, value = channel.get_nowait() if cancel.is_set() else channel.get(timeout=WAIT_SLICE)
        except queue.Empty:
            if cancel.is_set():
                raise TurnCancelled(name) from None
            continue
        if kind == "item":
            yield value
        elif kind == "result":
            return value
        else:
            raise value
