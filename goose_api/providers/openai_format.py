"""Goose messages -> OpenAI chat-completions requests, as pure functions.

Shared by every OpenAI-style API: OpenAI itself, Azure OpenAI, the named
compatible hosts (OpenRouter, Groq, DeepSeek, xAI, Mistral), any
``openai_compatible`` server, and llama-cpp's in-process chat API. What the
hosts disagree on is a ``Dialect``: the system role, whether images may be
sent, DeepSeek's ``reasoning_content``, Mistral's tool call ids and its refusal
of a user message right after a tool message. Tool results become ``role:
"tool"`` messages that directly follow the assistant message holding the
calls; images in tool results (which a tool message cannot carry) follow in a
user message. The answer side is ``openai_reply``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ToolSpec
from goose_api.providers.capabilities import image_note
from goose_api.providers.http import EncodedList, encode_item
from goose_api.providers.openai_reply import (  # noqa: F401 - the answer side, re-exported for callers
    ChatStreamAssembler,
    from_response,
    parse_chat_stream,
    to_usage,
)
from goose_api.providers.tool_names import ToolNames
from goose_api.providers.wire_cache import WireCache

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
BRIDGE = {"role": "assistant", "content": "I have the results of those tool calls."}
NO_NAMES = ToolNames(())


@dataclass(frozen=True)
class Dialect:
    """How one OpenAI-style API wants its messages (the defaults: OpenAI's own chat models)."""

    system_role: str = "system"
    images: bool = True                          # False: images become a short note (text-only models)
    model: str = ""                              # named in that note
    reasoning_content: bool = False              # DeepSeek: an answer's reasoning goes back with it
    call_id: Callable[[str], str] | None = None  # Mistral: tool call ids in its own format
    bridge_tool_to_user: bool = False            # Mistral: no user message right after a tool message


DEFAULT = Dialect()


# --- request ----------------------------------------------------------------------

def split_effort(model: str) -> tuple[str, str | None]:
    """``(model, effort)``: a reasoning effort suffix ("o3-mini-high") is split off goose-style."""
    base, _, suffix = model.rpartition("-")
    return (base, suffix) if base and suffix in EFFORTS else (model, None)


def chat_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
              temperature: float | None, max_tokens: int | None, stream: bool, stream_usage: bool = True,
              reasoning: bool = False, dialect: Dialect = DEFAULT, names: ToolNames = NO_NAMES,
              cache: WireCache | None = None) -> dict[str, Any]:
    """The JSON body of a chat-completions request.

    Reasoning models (OpenAI's o-series and GPT-5) take ``max_completion_tokens``
    instead of ``max_tokens``, no temperature (the API rejects one), the
    ``developer`` role and a ``reasoning_effort`` when the model name ends in one.
    """
    effort = None
    if reasoning:
        model, effort = split_effort(model)
        dialect = replace(dialect, system_role="developer")
    body: dict[str, Any] = {"model": model,
                            "messages": to_messages(system, messages, dialect=dialect, names=names, cache=cache)}
    if tools:
        body["tools"] = to_tools(tools, names)
    if reasoning:
        if effort:
            body["reasoning_effort"] = effort
        if max_tokens is not None:
            body["max_completion_tokens"] = max_tokens
    else:
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def to_tools(tools: list[ToolSpec], names: ToolNames = NO_NAMES) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": names.wire(t.name), "description": t.description,
                                              "parameters": t.input_schema}} for t in tools]


def to_messages(system: str, messages: list[Message], *, system_role: str | None = None,
                dialect: Dialect = DEFAULT, names: ToolNames = NO_NAMES, cache: WireCache | None = None) -> EncodedList:
    """The wire messages, each with its JSON text (``EncodedList``), for ``HttpProvider`` to send as is.

    A session's whole history is converted on every call but only grows at its
    end, so a provider keeps each message's conversion in its ``WireCache``;
    a conversion depends on the dialect, the renamed tools and the unparseable
    call ids before the message (a tool request always comes before its
    response). The cached wire dicts are shared between calls: read them, never
    change them.
    """
    if system_role is not None:
        dialect = replace(dialect, system_role=system_role)
    out = EncodedList()
    if system:
        out.append_encoded({"role": dialect.system_role, "content": system})
    invalid: frozenset[str] = frozenset()
    context = (dialect, names.key)
    last_role = None
    for message in messages:
        entry = cache.get(message, (context, invalid)) if cache is not None else None
        if entry is None:
            entry = _convert(message, dialect, names, invalid)
            if cache is not None:
                cache.put(message, (context, invalid), entry)
        wires, texts, own = entry
        if dialect.bridge_tool_to_user:
            last_role = _append_bridged(out, wires, texts, last_role)
        else:
            out.extend(wires)
            out.texts.extend(texts)
        if own:
            invalid = invalid | own
    return out


def _append_bridged(out: EncodedList, wires: tuple, texts: tuple, last_role: str | None) -> str | None:
    for wire, text in zip(wires, texts):
        if wire["role"] == "user" and last_role == "tool":
            out.append_encoded(BRIDGE)
        out.append(wire)
        out.texts.append(text)
        last_role = wire["role"]
    return last_role


def _convert(message: Message, dialect: Dialect, names: ToolNames, invalid: frozenset[str]) -> tuple:
    """The cache entry: (wire messages, their JSON texts, this message's unparseable call ids)."""
    own = frozenset(tc.invalid_call_ids([message])) or None
    convert = _assistant if message.role == "assistant" else _user
    wires = tuple(convert(message, dialect, names, invalid | own if own else invalid))
    return wires, tuple(encode_item(w) for w in wires), own


def image_part(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{item['mimeType']};base64,{item['data']}"}}


def _image(item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    return image_part(item) if dialect.images else {"type": "text", "text": image_note(conv.image_mime_type(item),
                                                                                        dialect.model)}


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string when there is only text: many compatible servers accept nothing else."""
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _call_id(call_id: str, dialect: Dialect) -> str:
    return dialect.call_id(call_id) if dialect.call_id is not None else call_id


def _tool_message(item: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    text = tc.result_text(item)
    if not dialect.images:  # a text-only model reads a note in the result instead of a user message after it
        text = "\n".join([text, *(image_note(conv.image_mime_type(i), dialect.model) for i in tc.result_images(item))])
    return {"role": "tool", "tool_call_id": _call_id(conv.call_id(item), dialect), "content": text}


def _user(message: Message, dialect: Dialect, names: ToolNames, invalid: frozenset[str]) -> list[dict[str, Any]]:
    tool_messages, parts = [], []
    for item in message.content:
        kind = conv.kind(item)
        if kind == "toolResponse" and conv.call_id(item) in invalid:
            parts.append({"type": "text", "text": tc.invalid_call_text(item)})
        elif kind == "toolResponse":
            tool_messages.append(_tool_message(item, dialect))
            if dialect.images:
                parts.extend(image_part(img) for img in tc.result_images(item))
        elif kind == "text" and conv.text_of(item):
            parts.append({"type": "text", "text": conv.text_of(item)})
        elif kind == "image":
            parts.append(_image(item, dialect))
    if parts:
        tool_messages.append({"role": "user", "content": _user_content(parts)})
    return tool_messages


def _assistant(message: Message, dialect: Dialect, names: ToolNames,
               invalid: frozenset[str]) -> list[dict[str, Any]]:
    text = message.text()
    calls = [{"id": _call_id(conv.call_id(i), dialect), "type": "function",
              "function": {"name": names.wire(tc.call_name(i)), "arguments": json.dumps(tc.call_arguments(i))}}
             for i in message.tool_requests() if conv.call_id(i) not in invalid]
    if not text and not calls:
        return []
    wire: dict[str, Any] = {"role": "assistant", "content": text or None}
    if dialect.reasoning_content:
        reasoning = "".join(map(conv.thinking_text, message.content))
        if reasoning:
            wire["reasoning_content"] = reasoning
    if calls:
        wire["tool_calls"] = calls
    return [wire]
