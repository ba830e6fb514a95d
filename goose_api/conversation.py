"""Goose's message model.

The internal message model *is* goose's session JSON: a message is
``{"role", "created", "content": [...]}`` and each content item is a plain dict
tagged by ``type`` (``text``, ``image``, ``toolRequest``, ``toolResponse``).
Nothing else in the code base knows the file format; providers translate
these dicts to and from their wire formats.

Content items are built with the constructors below and read with the
accessors (``tool_call_name(item)``, ``tool_result_text(item)``, ...), never
by their keys (``item["toolCall"]["value"]["name"]``), so the item shapes are
written down in this module only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

Role = Literal["user", "assistant"]
ROLES = ("user", "assistant")
TEXT, IMAGE, TOOL_REQUEST, TOOL_RESPONSE = "text", "image", "toolRequest", "toolResponse"
THINKING, REDACTED_THINKING = "thinking", "redactedThinking"  # reasoning a provider wants back (DeepSeek)
CONTENT_TYPES = (TEXT, IMAGE, TOOL_REQUEST, TOOL_RESPONSE, THINKING, REDACTED_THINKING)
MCP_CONTENT_TYPES = ("text", "image", "resource")
# goose's token counters in a session's metadata, in the order goose writes them: the last
# provider call's, then the running sums (``accumulated_<name>``).
TOKEN_FIELDS = ("total_tokens", "input_tokens", "output_tokens")
ACCUMULATED_FIELDS = tuple(f"accumulated_{name}" for name in TOKEN_FIELDS)


def accumulated_field(name: str) -> str:
    """The metadata field of a counter's running sum: ``input_tokens`` -> ``accumulated_input_tokens``."""
    return f"accumulated_{name}"

# goose's own texts, word for word: the goose CLI's answer to tool requests cut off by an
# interruption, and the agent's DECLINED_RESPONSE and CHAT_MODE_TOOL_SKIPPED_RESPONSE.
INTERRUPTED_TEXT = "Interrupted by the user to make a correction"
DECLINED_TEXT = ("The user has declined to run this tool. DO NOT attempt to call this tool again. "
                 "If there are no alternative methods to proceed, clearly explain the situation and STOP.")
CHAT_MODE_TEXT = ("Let the user know the tool call was skipped in goose chat mode. DO NOT apologize for "
                  "skipping the tool call. DO NOT say sorry. Provide an explanation of what the tool call "
                  "would do, structured as a plan for the user. Again, DO NOT apologize. **Example Plan:**\n "
                  "1. **Identify Task Scope** - Determine the purpose and expected outcome.\n "
                  "2. **Outline Steps** - Break down the steps.\n "
                  "If needed, adjust the explanation based on user preferences or questions.")

class MessageFormatError(ValueError):
    """A message or content item does not have goose's shape."""


def now() -> int:
    return int(time.time())


# --- content constructors ---------------------------------------------------

def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def image(data: str, mime_type: str) -> dict[str, Any]:
    return {"type": "image", "data": data, "mimeType": mime_type}


def resource(contents: dict[str, Any]) -> dict[str, Any]:
    """An embedded resource (MCP content in a tool result): ``contents`` has ``uri`` and ``text`` or ``blob``."""
    return {"type": "resource", "resource": contents}


def thinking(value: str, signature: str = "") -> dict[str, Any]:
    """A model's reasoning, kept because its provider wants it back (goose's ``thinking`` content)."""
    return {"type": THINKING, "thinking": value, "signature": signature}


def tool_request(call_id: str, name: str, arguments: dict[str, Any],
                 thought_signature: str | None = None) -> dict[str, Any]:
    """``thought_signature``: Gemini's opaque signature of the call, sent back with it (goose's field)."""
    item = {
        "type": "toolRequest",
        "id": call_id,
        "toolCall": {"status": "success", "value": {"name": name, "arguments": arguments}},
    }
    if thought_signature:
        item["thoughtSignature"] = thought_signature
    return item


def tool_request_error(call_id: str, error: str) -> dict[str, Any]:
    """A tool request the model made but that could not be parsed (bad JSON arguments, ...)."""
    return {"type": "toolRequest", "id": call_id, "toolCall": {"status": "error", "error": error}}


def tool_response(call_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A successful tool result; ``content`` is a list of MCP content dicts."""
    return {"type": "toolResponse", "id": call_id, "toolResult": {"status": "success", "value": content}}


def tool_error(call_id: str, error: str) -> dict[str, Any]:
    return {"type": "toolResponse", "id": call_id, "toolResult": {"status": "error", "error": error}}


# --- content accessors --------------------------------------------------------
# Each takes one content item (a dict of ``Message.content``). The tool_call_*
# ones read a ``toolRequest``, the tool_result_* ones a ``toolResponse``.

def kind(item: dict[str, Any]) -> str:
    """The item's type: ``text``, ``image``, ``toolRequest``, ``toolResponse``, ``thinking`` or
    ``redactedThinking`` (MCP content: ``resource`` too)."""
    return item["type"]


def is_text(item: dict[str, Any]) -> bool:
    return item.get("type") == TEXT


def is_image(item: dict[str, Any]) -> bool:
    """An image, in a message or in a tool's MCP content."""
    return item.get("type") == IMAGE


def is_tool_request(item: dict[str, Any]) -> bool:
    return item.get("type") == TOOL_REQUEST


def is_tool_response(item: dict[str, Any]) -> bool:
    return item.get("type") == TOOL_RESPONSE


def text_of(item: dict[str, Any]) -> str:
    """A text item's text ("" for any other item)."""
    return (item.get("text") or "") if is_text(item) else ""


def image_mime_type(item: dict[str, Any]) -> str:
    return item.get("mimeType") or ""


def image_data(item: dict[str, Any]) -> str:
    """An image's base64 data."""
    return item.get("data") or ""


def call_id(item: dict[str, Any]) -> str:
    """The id tying a tool response to its request."""
    return item["id"]


def tool_call_parsed(item: dict[str, Any]) -> bool:
    """Whether the model's tool call could be parsed (else ``tool_call_error`` says why)."""
    return (item.get("toolCall") or {}).get("status") == "success"


def _call_value(item: dict[str, Any]) -> dict[str, Any]:
    return ((item.get("toolCall") or {}).get("value") or {}) if tool_call_parsed(item) else {}


def tool_call_name(item: dict[str, Any]) -> str | None:
    """The tool a request calls (``extension__tool``); None when the call could not be parsed."""
    return _call_value(item).get("name")


def tool_call_arguments(item: dict[str, Any]) -> dict[str, Any]:
    return dict(_call_value(item).get("arguments") or {})


def tool_call_error(item: dict[str, Any]) -> str | None:
    """Why the call could not be parsed; None when it was."""
    return None if tool_call_parsed(item) else str((item.get("toolCall") or {}).get("error") or "")


def tool_call_json(item: dict[str, Any]) -> dict[str, Any]:
    """The whole call as goose stores it (its size is what a model reads)."""
    return item.get("toolCall") or {}


def tool_call_signature(item: dict[str, Any]) -> str | None:
    """Gemini's ``thoughtSignature`` of a tool request, which must go back with the call (None: not signed)."""
    return item.get("thoughtSignature") or None


def is_thinking(item: dict[str, Any]) -> bool:
    return item.get("type") in (THINKING, REDACTED_THINKING)


def thinking_text(item: dict[str, Any]) -> str:
    """A ``thinking`` item's reasoning ("" for any other item, a redacted one included)."""
    return (item.get("thinking") or "") if item.get("type") == THINKING else ""


def tool_result_ok(item: dict[str, Any]) -> bool:
    return (item.get("toolResult") or {}).get("status") == "success"


def tool_result_content(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A successful result's MCP content items ([] for an error)."""
    return list((item.get("toolResult") or {}).get("value") or []) if tool_result_ok(item) else []


def tool_result_error(item: dict[str, Any]) -> str | None:
    """A failed result's error text; None for a success."""
    return None if tool_result_ok(item) else str((item.get("toolResult") or {}).get("error") or "")


def tool_result_text(item: dict[str, Any]) -> str:
    """The text parts of a successful result, one per line ("" for an error or no text)."""
    return "\n".join(text_of(part) for part in tool_result_content(item) if is_text(part))


# --- messages ---------------------------------------------------------------

@dataclass
class Message:
    role: Role
    content: list[dict[str, Any]]
    created: int = field(default_factory=now)

    @classmethod
    def user(cls, *content: dict[str, Any] | str) -> "Message":
        return cls("user", [text(c) if isinstance(c, str) else c for c in content])

    @classmethod
    def assistant(cls, *content: dict[str, Any] | str) -> "Message":
        return cls("assistant", [text(c) if isinstance(c, str) else c for c in content])

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "created": self.created, "content": self.content}

    @classmethod
    def from_json(cls, obj: Any) -> "Message":
        validate_message(obj)
        return cls(obj["role"], obj["content"], obj["created"])

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    # Views used by the agent loop and the providers.
    def text(self) -> str:
        return "".join(text_of(c) for c in self.content if is_text(c))

    def tool_requests(self) -> list[dict[str, Any]]:
        return [c for c in self.content if is_tool_request(c)]

    def tool_responses(self) -> list[dict[str, Any]]:
        return [c for c in self.content if is_tool_response(c)]


def final_text(messages: Iterable[Message]) -> str:
    """The text of the last assistant message (the turn's answer)."""
    for message in reversed(list(messages)):
        if message.role == "assistant":
            return message.text()
    return ""


# --- validation -------------------------------------------------------------

def _require(cond: bool, what: str) -> None:
    if not cond:
        raise MessageFormatError(what)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_mcp_content(item: Any) -> None:
    _require(isinstance(item, dict), "MCP content must be an object")
    kind = item.get("type")
    _require(kind in MCP_CONTENT_TYPES, f"unknown MCP content type {kind!r}")
    if kind == "text":
        _require(isinstance(item.get("text"), str), "text content needs a string 'text'")
    elif kind == "image":
        _require(isinstance(item.get("data"), str) and isinstance(item.get("mimeType"), str),
                 "image content needs 'data' and 'mimeType'")
    else:
        resource = item.get("resource")
        _require(isinstance(resource, dict) and isinstance(resource.get("uri"), str),
                 "resource content needs a 'resource' with a 'uri'")
        _require(isinstance(resource.get("text"), str) or isinstance(resource.get("blob"), str),
                 "resource content needs 'text' or 'blob'")


def _validate_result(result: Any, what: str, value_check) -> None:
    _require(isinstance(result, dict), f"{what} must be an object")
    status = result.get("status")
    if status == "success":
        value_check(result.get("value"))
    elif status == "error":
        _require(isinstance(result.get("error"), str), f"{what} error must be a string")
    else:
        raise MessageFormatError(f"{what} status must be 'success' or 'error'")


def _check_call(value: Any) -> None:
    _require(isinstance(value, dict) and isinstance(value.get("name"), str),
             "toolCall value needs a 'name'")
    _require(isinstance(value.get("arguments", {}), dict), "toolCall arguments must be an object")


def _check_result_value(value: Any) -> None:
    _require(isinstance(value, list), "toolResult value must be a list of MCP content")
    for item in value:
        validate_mcp_content(item)


def validate_content(item: Any) -> None:
    _require(isinstance(item, dict), "content item must be an object")
    kind = item.get("type")
    _require(kind in CONTENT_TYPES, f"unknown content type {kind!r}")
    if kind == "text":
        _require(isinstance(item.get("text"), str), "text content needs a string 'text'")
    elif kind == "image":
        _require(isinstance(item.get("data"), str) and isinstance(item.get("mimeType"), str),
                 "image content needs 'data' and 'mimeType'")
    elif kind == "toolRequest":
        _require(isinstance(item.get("id"), str), "toolRequest needs a string 'id'")
        _validate_result(item.get("toolCall"), "toolCall", _check_call)
        _require(isinstance(item.get("thoughtSignature", ""), str), "toolRequest thoughtSignature must be a string")
    elif kind == "thinking":
        _require(isinstance(item.get("thinking"), str) and isinstance(item.get("signature"), str),
                 "thinking content needs string 'thinking' and 'signature'")
    elif kind == "redactedThinking":
        _require(isinstance(item.get("data"), str), "redactedThinking content needs a string 'data'")
    else:
        _require(isinstance(item.get("id"), str), "toolResponse needs a string 'id'")
        _validate_result(item.get("toolResult"), "toolResult", _check_result_value)


def validate_message(obj: Any) -> None:
    """Raise MessageFormatError unless ``obj`` is a message goose can read."""
    _require(isinstance(obj, dict), "message must be an object")
    _require(obj.get("role") in ROLES, f"role must be one of {ROLES}")
    _require(_is_int(obj.get("created")), "created must be an integer (seconds)")
    content = obj.get("content")
    _require(isinstance(content, list), "content must be a list")
    for item in content:
        validate_content(item)
        if item["type"] == "toolResponse":
            _require(obj["role"] == "user", "tool responses live in user messages")


def check_pairs(messages: list[Message]) -> None:
    """Raise MessageFormatError unless each message answers every tool request of the one before it.

    (The last message may still have open requests: a crash or a shutdown leaves them so.)
    """
    for number, (asking, answering) in enumerate(zip(messages, messages[1:]), start=2):
        open_ids = {call_id(r) for r in asking.tool_requests()} - {call_id(r) for r in answering.tool_responses()}
        if open_ids:
            raise MessageFormatError(f"message {number} does not answer the tool requests {sorted(open_ids)} "
                                     f"of message {number - 1}")
