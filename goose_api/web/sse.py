"""Server-Sent Events: a run's event log as a ``text/event-stream``.

Each event goes out as ``id``/``event``/``data`` lines; the ids are the log's,
so a client that reconnects with ``Last-Event-ID`` (or ``?after=``) gets every
later event once. A comment line goes out when the stream has been quiet for
``sse_heartbeat`` seconds, so proxies do not close it; the stream ends after
the run's terminal event (``done`` or ``error``). A client that goes away only
ends its stream: the run goes on.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Iterator

from goose_api.runs.event_log import Event, EventLog

RETRY_MS = 1000      # how soon a browser's EventSource reconnects after a drop
LIVENESS_CHECK = 1.0


def frame(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n"


def stream_events(log: EventLog, after: int, *, heartbeat: float, poll: float,
                  check_owner: Callable[[], object], stopping: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The events after ``after`` and then the new ones, until the terminal event.

    ``check_owner`` is called when the stream is quiet, so a run whose owner
    died gets its ``error`` event (and this stream its end). A client already
    past the terminal event gets an empty stream at once, and every stream
    ends when ``stopping()`` turns true (the worker is shutting down; clients
    reconnect with ``Last-Event-ID`` to another one).
    """
    reader = log.follow(after)
    yield f"retry: {RETRY_MS}\n\n"
    if any(event.terminal and event.id <= after for event in log.read(0)):
        return
    quiet_since = time.monotonic()
    while True:
        wait = max(0.0, min(LIVENESS_CHECK, heartbeat - (time.monotonic() - quiet_since)))
        events = reader.wait(wait, poll)
        for event in events:
            yield frame(event)
            if event.terminal:
                return
        if events:
            quiet_since = time.monotonic()
            continue
        if stopping():
            return
        if time.monotonic() - quiet_since >= heartbeat:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        check_owner()
