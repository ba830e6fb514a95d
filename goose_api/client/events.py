"""What :class:`goose_api.client.GooseClient` hands back: a turn's answer and a run's events.

Answers and events keep the server's JSON in ``data`` (fields the server adds
later are there too) and expose the fields a caller needs as attributes.
:func:`parse_sse` reads the ``text/event-stream`` wire format line by line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from goose_api.client.sse import sse_frames

# --- answers -------------------------------------------------------------------------

@dataclass(frozen=True)
class Turn:
    """A turn's answer (also the ``done`` event's data, and a confirm's answer).

    ``status`` is ``success``, ``warning`` (see ``warnings``), ``cancelled`` or
    ``waiting_approval`` (see ``pending_approvals``; answer with ``confirm``).
    """

    status: str
    session_id: str
    run_id: str | None
    response: str
    message: str
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)
    usage: dict[str, Any] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    cancelled: str | None = None
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Turn":
        return cls(status=data.get("status", ""), session_id=data.get("session_id", ""), run_id=data.get("run_id"),
                   response=data.get("response", ""), message=data.get("message", ""),
                   messages=list(data.get("messages") or []), usage=dict(data.get("usage") or {}),
                   warnings=list(data.get("warnings") or []), cancelled=data.get("cancelled"),
                   pending_approvals=list(data.get("pending_approvals") or []), data=dict(data))


@dataclass(frozen=True)
class Accepted:
    """202: the turn runs in the background (``status`` ``accepted``, or ``queued`` behind another
    turn); follow it with ``events`` or ``wait``."""

    session_id: str
    run_id: str
    message: str
    status: str = "accepted"
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Accepted":
        return cls(session_id=data["session_id"], run_id=data["run_id"], message=data.get("message", ""),
                   status=data.get("status", "accepted"), data=dict(data))


# --- events --------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Event:
    """One event of a run; ``id`` orders events across a session's runs. Unknown types stay this class."""

    id: int | None
    type: str
    data: Any = field(repr=False)
    terminal: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """Assistant text: a delta as it streams, or a whole message when the provider did not stream."""

    text: str


@dataclass(frozen=True, kw_only=True)
class _ToolCallEvent(Event):
    call_id: str
    tool: str | None  # extension__tool
    arguments: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ToolRequestEvent(_ToolCallEvent):
    """The model calls a tool (``tool`` is ``extension__tool``)."""


@dataclass(frozen=True, kw_only=True)
class ToolResponseEvent(Event):
    """A tool call's result: ``text`` of its content, or ``error``."""

    call_id: str
    text: str
    error: str | None


@dataclass(frozen=True, kw_only=True)
class ApprovalRequiredEvent(_ToolCallEvent):
    """A tool call waits for ``confirm(session_id, call_id, action)``."""


@dataclass(frozen=True, kw_only=True)
class NotificationEvent(Event):
    """An MCP progress or log message of a running tool, or a warning (``kind``: progress, log, warning)."""

    kind: str | None
    message: str | None


@dataclass(frozen=True, kw_only=True)
class DoneEvent(Event):
    """The run ended; ``turn`` is the answer the blocking request would have had."""

    turn: Turn
    terminal: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    """The run ended with an error (``data`` is the error answer, ``http_status`` its status)."""

    terminal: ClassVar[bool] = True


# The client reads goose content items here only (it imports no server code, so not through
# goose_api.conversation, whose accessors read the same shapes on the server side).

def tool_call(item: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A ``toolRequest`` item's tool name (None if the model's call was unparsable) and arguments."""
    value = (item.get("toolCall") or {}).get("value") or {}
    return value.get("name"), dict(value.get("arguments") or {})


def tool_result(item: Mapping[str, Any]) -> tuple[str, str | None]:
    """A ``toolResponse`` item's text (its text parts, one per line) and error (None on success)."""
    result = item.get("toolResult") or {}
    if result.get("status") == "error":
        return "", str(result.get("error") or "error")
    texts = [c.get("text", "") for c in result.get("value") or [] if isinstance(c, dict) and c.get("type") == "text"]
    return "\n".join(texts), None


def make_event(event_id: int | None, kind: str, data: Any) -> Event:
    """The typed event for one SSE event of the server."""
    base = {"id": event_id, "type": kind, "data": data}
    item = data if isinstance(data, dict) else {}
    if kind == "message":
        return MessageEvent(**base, text=str(item.get("text", "")))
    if kind == "tool_request":
        tool, arguments = tool_call(item)
        return ToolRequestEvent(**base, call_id=str(item.get("id", "")), tool=tool, arguments=arguments)
    if kind == "tool_response":
        text, error = tool_result(item)
        return ToolResponseEvent(**base, call_id=str(item.get("id", "")), text=text, error=error)
    if kind == "approval_required":
        return ApprovalRequiredEvent(**base, call_id=str(item.get("id", "")), tool=item.get("tool"),
                                     arguments=dict(item.get("arguments") or {}))
    if kind == "notification":
        return NotificationEvent(**base, kind=item.get("type"), message=item.get("message"))
    if kind == "done":
        return DoneEvent(**base, turn=Turn.from_json(item))
    if kind == "error":
        return ErrorEvent(**base)
    return Event(**base)


class EventStream:
    """A run's events as they happen (iterate it); ``session_id`` and ``run_id`` say whose.

    Iterating ends after the ``DoneEvent``; a run that ends with an error raises it.
    ``close()`` stops following early (the run goes on: ``cancel`` stops it). ``queued``:
    the turn waits behind the session's current run (``if_busy="enqueue"``); its events
    come once it starts.
    """

    def __init__(self, events: Iterator[Event], session_id: str, run_id: str | None, queued: bool = False):
        self._events = events
        self.session_id = session_id
        self.run_id = run_id
        self.queued = queued

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def close(self) -> None:
        self._events.close()  # type: ignore[attr-defined]  (a generator)


# --- the wire format -----------------------------------------------------------------

@dataclass
class SseField:
    """A reconnection delay (``retry:``) the server asked for, in seconds."""

    retry: float | None = None


def parse_sse(lines: Iterable[str], fields: SseField | None = None) -> Iterator[Event]:
    """Events from ``text/event-stream`` lines, each yielded when its blank line arrives.

    An event cut off by a dropped connection (no blank line yet) is never
    yielded, so a reconnect from the last yielded id repeats and loses nothing.
    """
    def retry(ms: int) -> None:
        if fields is not None:
            fields.retry = ms / 1000
    for frame in sse_frames(lines, on_retry=retry):
        number = int(frame.id) if frame.id is not None and frame.id.isdigit() else None
        yield make_event(number, frame.event, json.loads(frame.data))
