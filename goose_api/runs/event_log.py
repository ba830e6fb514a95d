"""A run's append-only event log: one JSON object per line, ids increasing.

Every consumer of a run (the blocking answer, an SSE stream, a poller in
another worker) reads this file, so what one worker's run did is visible to
all workers. Lines are ``{"id", "type", "data", "time"}``; ids continue the
session's previous run, so an SSE ``Last-Event-ID`` stays meaningful across
runs. Appends hold the session's state lock (a file lock), so a second writer
(another process marking a dead owner's run interrupted) cannot interleave.

The file is an append-only JSON Lines file (``storage/jsonl.py``): readers
never lock, a line is only used once its newline is there, and a line a crash
tore is stepped over by the next append and by every reader. Waiting readers
poll the file (another process may write it); a writer in the same process
also wakes them at once through ``LogSignal``.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from goose_api.storage import jsonl

TERMINAL_TYPES = frozenset({"done", "error"})


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "data": self.data, "time": self.time}

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES


class LogSignal:
    """Wakes readers in this process when the log they wait on is appended to (others poll).

    One channel per log file: with 200 runs in flight, an append wakes the
    readers of its own run only, not all 200 (each of which would re-read its
    file: quadratic work in the number of runs). A channel lives while someone
    listens on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}

    def listen(self, key: str) -> _Channel:
        """The channel of ``key``; ``leave`` it when done waiting."""
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = self._channels[key] = _Channel(key)
            channel.listeners += 1
            return channel

    def leave(self, channel: _Channel) -> None:
        with self._lock:
            channel.listeners -= 1
            if channel.listeners == 0 and self._channels.get(channel.key) is channel:
                del self._channels[channel.key]

    def listeners(self, key: str) -> int:
        """How many readers wait on ``key`` now (diagnostics and tests)."""
        with self._lock:
            channel = self._channels.get(key)
            return channel.listeners if channel is not None else 0

    def notify(self, key: str) -> None:
        with self._lock:
            channel = self._channels.get(key)
        if channel is not None:
            channel.notify()


class _Channel:
    def __init__(self, key: str) -> None:
        self.key = key
        self.listeners = 0
        self.generation = 0
        self._cond = threading.Condition()

    def notify(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Until the generation moves past ``seen`` (an append) or ``timeout`` seconds pass."""
        with self._cond:
            if self.generation == seen:
                self._cond.wait(timeout)


class EventLog:
    """One run's events in ``<run_id>.events.jsonl``."""

    def __init__(self, path: Path, base: int, lock: Callable[[], AbstractContextManager[Any]], signal: LogSignal,
                 key: str | None = None):
        self.path = Path(path)
        self.key = key or str(self.path)  # the signal's channel: the same on every host (``<session>/<run>``)
        self.base = base          # the id before this run's first event
        self._lock = lock
        self.signal = signal
        self._tail: tuple[int, int] | None = None  # (file size, last id) after our own last append

    def append(self, kind: str, data: dict[str, Any], event_id: int | None = None) -> Event:
        """Write one event; ``event_id`` is for an id reserved earlier with ``next_id``."""
        with self._lock():
            event = Event(event_id if event_id is not None else self.next_id(), kind, data, time.time())
            self._tail = (jsonl.append(self.path, event.to_json()), event.id)
        self.signal.notify(self.key)
        return event

    def next_id(self) -> int:
        """The id the next append would get (call with the lock held to reserve it)."""
        if self._tail is not None and _size(self.path) == self._tail[0]:
            return self._tail[1] + 1
        return self.last_id() + 1

    def read(self, after: int = 0) -> list[Event]:
        """Complete events with ``id > after``, in order."""
        return [event for event in self.follow(after).poll()]

    def last_id(self) -> int:
        events = self.read()
        return events[-1].id if events else self.base

    def follow(self, after: int) -> "LogReader":
        return LogReader(self, after)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class LogReader:
    """Reads a log incrementally from a byte offset: each line is parsed once."""

    def __init__(self, log: EventLog, after: int):
        self.log = log
        self.after = after        # the last id handed out
        self._lines = jsonl.Reader(log.path)

    def poll(self) -> list[Event]:
        """The complete events written since the last poll (ids above ``after``)."""
        events = []
        for raw in self._lines.read():
            event = _event(raw)
            if event is not None and event.id > self.after:
                events.append(event)
        if events:
            self.after = events[-1].id
        return events

    def wait(self, timeout: float, poll: float) -> list[Event]:
        """New events, waiting up to ``timeout`` seconds for the first one."""
        deadline = time.monotonic() + max(0.0, timeout)
        channel = self.log.signal.listen(self.log.key)  # before the poll: no append slips in between
        try:
            while True:
                seen = channel.generation
                events = self.poll()
                remaining = deadline - time.monotonic()
                if events or remaining <= 0:
                    return events
                channel.wait(seen, min(poll, remaining))
        finally:
            self.log.signal.leave(channel)


def _event(raw: Any) -> Event | None:
    """An event line as an ``Event``; None for a line that is JSON but not an event of ours."""
    try:
        return Event(int(raw["id"]), str(raw["type"]), raw["data"], float(raw["time"]))
    except (TypeError, KeyError, ValueError):
        return None


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
