"""A ``POST /v1/responses`` body, read and checked field by field (errors name the ``param``).

``input`` is a string (the prompt) or a list of input items: messages (the
"easy" ``{"role", "content"}`` form or typed ``message`` items, with
``input_text`` / ``output_text`` parts) and ``mcp_approval_response`` items.
Fields of the OpenAI API that mean nothing here (``temperature``,
``max_output_tokens``, ...) are accepted and ignored; ``tools`` is refused:
goose-api's tools are the server's extensions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from goose_api.conversation import Message
from goose_api.errors import BadRequest

METADATA_KEYS, METADATA_KEY_LENGTH, METADATA_VALUE_LENGTH = 16, 64, 512
TEXT_PARTS = ("input_text", "output_text", "text")


@dataclass(frozen=True)
class Approval:
    request_id: str
    approve: bool


@dataclass
class ResponseRequest:
    model: Any
    prompt: str | None                        # the new user text (None: approvals only)
    history: list[Message] = field(default_factory=list)  # earlier messages, for a new session
    approvals: list[Approval] = field(default_factory=list)
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    store: bool = True
    stream: bool = False
    background: bool = False


def invalid(message: str, param: str) -> BadRequest:
    return BadRequest(message, details={"param": param})


def read_request(body: Any) -> ResponseRequest:
    """The request in ``body``.

    Raises:
        BadRequest: a field is missing, of the wrong type, or not supported (``param`` names it).
    """
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object", "body")
    if body.get("tools"):
        raise invalid("tools are not accepted: goose-api's tools are the server's extensions, and its answers "
                      "show their calls as mcp_call items", "tools")
    request = ResponseRequest(model=body.get("model"), prompt=None)
    request.instructions = _optional_str(body, "instructions")
    request.previous_response_id = _optional_str(body, "previous_response_id")
    request.conversation = _conversation(body.get("conversation"))
    request.metadata = _metadata(body.get("metadata"))
    request.store, request.stream, request.background = (_flag(body, "store", True), _flag(body, "stream", False),
                                                        _flag(body, "background", False))
    if request.previous_response_id and request.conversation:
        raise invalid("Send previous_response_id or conversation, not both", "conversation")
    if request.background and not request.store:
        raise invalid("background responses must be stored: drop \"store\": false", "store")
    _read_input(body.get("input"), request)
    return request


def _read_input(value: Any, request: ResponseRequest) -> None:
    if isinstance(value, str):
        if not value.strip():
            raise invalid("input must not be empty", "input")
        request.prompt = value
        return
    if not isinstance(value, list) or not value:
        raise invalid("input is required: a string or a non-empty list of input items", "input")
    messages: list[Message] = []
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid("each input item must be an object", f"input[{n}]")
        kind = item.get("type", "message")
        if kind == "mcp_approval_response":
            request.approvals.append(_approval(item, n))
        elif kind == "message":
            _message(item, n, messages, request)
        else:
            raise invalid(f"input items of type {kind!r} are not supported here; send messages and "
                          "mcp_approval_response items", f"input[{n}].type")
    if request.approvals:
        if messages:
            raise invalid("Send mcp_approval_response items on their own (the turn goes on after them)", "input")
        return
    if not messages or messages[-1].role != "user":
        raise invalid("The last input item must be a user message (the prompt)", "input")
    request.prompt = messages[-1].text()
    request.history = messages[:-1]


def _message(item: dict[str, Any], n: int, messages: list[Message], request: ResponseRequest) -> None:
    role = item.get("role")
    text = _content_text(item.get("content"), f"input[{n}].content")
    if role in ("system", "developer"):
        request.instructions = "\n\n".join(part for part in (request.instructions, text) if part)
    elif role in ("user", "assistant"):
        messages.append(Message.user(text) if role == "user" else Message.assistant(text))
    else:
        raise invalid("role must be user, assistant, system or developer", f"input[{n}].role")


def _content_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid("content must be a string or a list of text parts", param)
    texts = []
    for m, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS or not isinstance(part.get("text"), str):
            raise invalid(f"content parts of type {kind!r} are not supported; send text", f"{param}[{m}]")
        texts.append(part["text"])
    return "".join(texts)


def _approval(item: dict[str, Any], n: int) -> Approval:
    request_id, approve = item.get("approval_request_id"), item.get("approve")
    if not isinstance(request_id, str) or not request_id:
        raise invalid("approval_request_id is required", f"input[{n}].approval_request_id")
    if not isinstance(approve, bool):
        raise invalid("approve must be true or false", f"input[{n}].approve")
    return Approval(request_id, approve)


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{name} must be a string", name)
    return value or None


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false", name)
    return value


def _conversation(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    if value is not None and (not isinstance(value, str) or not value):
        raise invalid("conversation must be a goose session id (or {\"id\": ...})", "conversation")
    return value


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > METADATA_KEYS:
        raise invalid(f"metadata must be an object of at most {METADATA_KEYS} string pairs", "metadata")
    for key, item in value.items():
        if len(key) > METADATA_KEY_LENGTH or not isinstance(item, str) or len(item) > METADATA_VALUE_LENGTH:
            raise invalid(f"metadata keys are strings of at most {METADATA_KEY_LENGTH} characters and values of "
                          f"at most {METADATA_VALUE_LENGTH}", f"metadata.{key}")
    return dict(value)
