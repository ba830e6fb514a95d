"""Tool-call pieces every wire converter needs, kept in one place.

Goose keeps a tool call the model botched (arguments that are not JSON) as a
``toolRequest`` with an error status, answered by an error ``toolResponse``.
No provider API can carry a call without a name and arguments, so converters
send such a pair as plain user text instead (``invalid_call_ids`` +
``invalid_call_text``); the model still learns what went wrong.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable

from goose_api import conversation as conv
from goose_api.conversation import Message


def new_call_id(prefix: str = "call") -> str:
    """An id for APIs that do not give tool calls one (Google, Ollama)."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def parse_arguments(call_id: str, name: str, raw: Any, thought_signature: str | None = None) -> dict[str, Any]:
    """A toolRequest item from wire arguments; unusable JSON becomes a tool_request_error."""
    if isinstance(raw, dict):
        return conv.tool_request(call_id, name, raw, thought_signature)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return conv.tool_request(call_id, name, {}, thought_signature)
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        return conv.tool_request_error(
            call_id, f"Could not parse the arguments of tool '{name}' as JSON ({exc}): {str(raw)[:200]}")
    if not isinstance(value, dict):
        return conv.tool_request_error(
            call_id, f"The arguments of tool '{name}' must be a JSON object, got: {str(raw)[:200]}")
    return conv.tool_request(call_id, name, value, thought_signature)


def invalid_call_ids(messages: Iterable[Message]) -> set[str]:
    """Ids of tool requests whose call could not be parsed."""
    return {conv.call_id(item) for m in messages for item in m.tool_requests() if not conv.tool_call_parsed(item)}


def invalid_call_text(response: dict[str, Any]) -> str:
    """How an answered-but-unparseable tool call reaches the model: as user text."""
    return f"Your tool call could not be run: {result_text(response)}"


def tool_names(messages: Iterable[Message]) -> dict[str, str]:
    """Tool call id -> tool name (Google and Ollama name the tool in a result)."""
    return {conv.call_id(item): conv.tool_call_name(item) for m in messages for item in m.tool_requests()
            if conv.tool_call_parsed(item)}


def is_error(response: dict[str, Any]) -> bool:
    return not conv.tool_result_ok(response)


def error_text(response: dict[str, Any]) -> str:
    """A failed toolResponse's error ("" for a success)."""
    return conv.tool_result_error(response) or ""


def result_text(response: dict[str, Any]) -> str:
    """The text of a toolResponse: its text and resource contents, or its error."""
    error = conv.tool_result_error(response)
    if error is not None:
        return f"Error: {error}"
    parts = []
    for item in conv.tool_result_content(response):
        if conv.is_text(item):
            parts.append(conv.text_of(item))
        elif conv.kind(item) == "resource":
            resource = item["resource"]
            parts.append(resource.get("text") or f"[binary resource {resource['uri']}]")
    return "\n".join(parts)


def result_images(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The image items of a successful toolResponse (MCP image content)."""
    return [item for item in conv.tool_result_content(response) if conv.is_image(item)]


def call_arguments(request: dict[str, Any]) -> dict[str, Any]:
    return conv.tool_call_arguments(request)


def call_name(request: dict[str, Any]) -> str:
    """The goose name (``extension__tool``) of a successfully parsed toolRequest."""
    return conv.tool_call_name(request) or ""
