"""A strict Server-Sent Events reader for the tests, independent of the code under test.

Parses the wire format (``id``/``event``/``data`` fields, comments, blank-line
framing) from any iterable of text lines: a finished body or a live
``requests`` stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator


@dataclass
class SseEvent:
    id: int | None
    type: str
    data: Any


@dataclass
class SseRead:
    events: list[SseEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def parse(lines: Iterable[str], read: SseRead | None = None) -> Iterator[SseEvent]:
    """Yield events as their blank line arrives; comments are collected in ``read``."""
    event_id, kind, data = None, "message", []
    for raw in lines:
        line = raw.rstrip("\r")
        if line == "":
            if data:
                event = SseEvent(int(event_id) if event_id is not None else None, kind, json.loads("\n".join(data)))
                if read is not None:
                    read.events.append(event)
                yield event
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            if read is not None:
                read.comments.append(line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name != "retry":
            raise AssertionError(f"unknown SSE field {name!r} in {line!r}")


def parse_text(text: str) -> SseRead:
    read = SseRead()
    for _ in parse(text.split("\n"), read):
        pass
    return read
