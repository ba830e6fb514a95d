"""Reading ``text/event-stream``: the one parser for providers' streams and the client's.

Fields ``id``, ``event``, ``data`` (several lines joined with newlines) and
``retry``; comments (``:``, keep-alives) are skipped; a blank line ends an event,
and only an event with data is yielded (as the SSE spec dispatches them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class SseFrame:
    event: str        # "message" when the stream names none
    data: str
    id: str | None    # this event's own ``id:`` field


def sse_frames(lines: Iterable[str], *, on_retry: Callable[[int], None] | None = None,
               partial_last: bool = False) -> Iterator[SseFrame]:
    """Yield each event as its blank line arrives.

    ``on_retry`` hears every ``retry:`` (milliseconds). An event the stream
    ended in the middle of is dropped (a reconnect from the last id repeats
    it), unless ``partial_last``: lenient reading of a finished body.
    """
    event_id, event, data = None, "message", []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SseFrame(event, "\n".join(data), event_id)
            event_id, event, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "retry" and value.isdigit() and on_retry is not None:
            on_retry(int(value))
    if data and partial_last:
        yield SseFrame(event, "\n".join(data), event_id)
