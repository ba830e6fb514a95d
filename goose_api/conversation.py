"""Goose's message model.

The internal message model *is* goose's session JSON: a message is
``{"role", "created", "content": [...]}`` and each content item is a plain dict
tagged by ``type`` (``text``, ``image``, ``toolRequest``, ``toolResponse``).
Nothing else in the code base knows the file format; providers translate
these dicts to and from their wire formats.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

Role = Literal["user", "assistant"]
ROLES = ("user", "assistant")
CONTENT_TYPES = ("text", "image", "toolRequest", "toolResponse", "thinking", "redactedThinking")
MCP_CONTENT_TYPES = ("text", "image", "resource")

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


def thinking(value: str, signature: str = "") -> dict[str, Any]:
    """A model's reasoning, kept because its provider wants it back (goose's ``thinking`` content)."""
    return {"type": "thinking", "thinking": value, "signature": signature}


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
        return "".join(c["text"] for c in self.content if c["type"] == "text")

    def tool_requests(self) -> list[dict[str, Any]]:
        return [c for c in self.content if c["type"] == "toolRequest"]

    def tool_responses(self) -> list[dict[str, Any]]:
        return [c for c in self.content if c["type"] == "toolResponse"]


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
        open_ids = {r["id"] for r in asking.tool_requests()} - {r["id"] for r in answering.tool_responses()}
        if open_ids:
            raise MessageFormatError(f"message {number} does not answer the tool requests {sorted(open_ids)} "
                                     f"of message {number - 1}")
