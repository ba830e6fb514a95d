"""A ``POST /v1/chat/completions`` body, read and checked field by field (errors name the ``param``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from goose_api.errors import BadRequest

TEXT_PARTS = ("text", "input_text")


@dataclass
class ChatRequest:
    model: Any
    prompt: str                                   # the last user message
    earlier: list[tuple[str, str]] = field(default_factory=list)  # (role, text) before it: user / assistant
    instructions: str | None = None               # the system / developer messages
    session_id: str | None = None                 # metadata.session_id
    stream: bool = False
    include_usage: bool = False


def invalid(message: str, param: str) -> BadRequest:
    return BadRequest(message, details={"param": param})


def read_request(body: Any) -> ChatRequest:
    """The request in ``body``.

    Raises:
        BadRequest: a field is missing, of the wrong type, or not supported (``param`` names it).
    """
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object", "body")
    if body.get("tools") or body.get("functions"):
        raise invalid("tools are not accepted: goose-api runs the server's extensions itself", "tools")
    if body.get("n") not in (None, 1):
        raise invalid("n must be 1: a goose turn has one answer", "n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream must be true or false", "stream")
    options = body.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict)):
        raise invalid("stream_options is only allowed when stream is true", "stream_options")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get("session_id", ""), str):
        raise invalid("metadata must be an object of strings (session_id: a goose session id)", "metadata")
    earlier, instructions = _messages(body.get("messages"))
    role, prompt = earlier.pop()
    if role != "user":
        raise invalid("The last message must be the user's", "messages")
    return ChatRequest(body.get("model"), prompt, earlier, instructions, metadata.get("session_id") or None,
                       stream, bool((options or {}).get("include_usage")))


def _messages(value: Any) -> tuple[list[tuple[str, str]], str | None]:
    if not isinstance(value, list) or not value:
        raise invalid("messages must be a non-empty list", "messages")
    turns: list[tuple[str, str]] = []
    system: list[str] = []
    for n, message in enumerate(value):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.append(_text(message.get("content"), f"messages[{n}].content"))
        elif role in ("user", "assistant"):
            turns.append((role, _text(message.get("content"), f"messages[{n}].content")))
        else:
            raise invalid("role must be system, developer, user or assistant (tool calls run on the server)",
                          f"messages[{n}].role")
    if not turns:
        raise invalid("messages need a user message", "messages")
    return turns, "\n\n".join(system) or None


def _text(content: Any, param: str) -> str:
    if content is None:
        return ""
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
