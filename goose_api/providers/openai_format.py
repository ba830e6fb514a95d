"""Goose messages <-> OpenAI chat-completions JSON, as pure functions.

Shared by every OpenAI-style API: OpenAI itself, Azure OpenAI, the named
compatible hosts (OpenRouter, Groq, DeepSeek, xAI, Mistral), any
``openai_compatible`` server, and llama-cpp's in-process chat API.
Tool results become ``role: "tool"`` messages that directly follow the
assistant message holding the calls; images in tool results (which a tool
message cannot carry) follow in a user message.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
from goose_api.providers.http import EncodedList, encode_item, sse_events

O_SERIES = re.compile(r"^o\d")
EFFORTS = ("low", "medium", "high")


# --- request ----------------------------------------------------------------------

def reasoning_model(model: str) -> tuple[str, str] | None:
    """``(model, effort)`` for o-series models; an effort suffix ("o3-mini-high") is split off."""
    if not O_SERIES.match(model):
        return None
    base, _, suffix = model.rpartition("-")
    if base and suffix in EFFORTS:
        return base, suffix
    return model, "medium"


def chat_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
              temperature: float | None, max_tokens: int | None, stream: bool,
              stream_usage: bool = True) -> dict[str, Any]:
    """The JSON body of a chat-completions request.

    o-series models take ``developer`` instead of ``system``,
    ``max_completion_tokens`` instead of ``max_tokens``, a ``reasoning_effort``
    and no temperature (the API rejects one).
    """
    reasoning = reasoning_model(model)
    body: dict[str, Any] = {"model": reasoning[0] if reasoning else model,
                            "messages": to_messages(system, messages,
                                                    system_role="developer" if reasoning else "system")}
    if tools:
        body["tools"] = to_tools(tools)
    if reasoning:
        body["reasoning_effort"] = reasoning[1]
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


def to_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.input_schema}} for t in tools]


def to_messages(system: str, messages: list[Message], *, system_role: str = "system") -> EncodedList:
    """The wire messages, each with its JSON text (``EncodedList``), for ``HttpProvider`` to send as is.

    A session's whole history is converted on every call but only grows at its
    end, so each message's conversion and JSON text are cached on the message
    (like the context's token estimate), keyed by its content list's identity and
    length and by the unparseable call ids before it (a tool request always comes
    before its response). The wire dicts are shared between calls: read them, never
    change them.
    """
    out = EncodedList()
    if system:
        out.append_encoded({"role": system_role, "content": system})
    invalid: frozenset[str] = frozenset()
    for message in messages:
        cached = message.__dict__.get("_openai_wire")
        if cached is None or cached[:3] != (id(message.content), len(message.content), invalid):
            cached = _convert(message, invalid)
            message.__dict__["_openai_wire"] = cached
        wire, text, own = cached[3:]
        if type(wire) is dict:  # noqa: E721 - one wire message (the usual case), kept without a list
            out.append(wire)
            out.texts.append(text)
        else:
            out.extend(wire)
            out.texts.extend(text)
        if own:
            invalid = invalid | own
    return out


def _convert(message: Message, invalid: frozenset[str]) -> tuple:
    """The cache entry: (content id, content length, invalid ids before, wire, JSON, own invalid ids).

    One flat tuple, and a lone wire message without a list: the cyclic garbage
    collector walks every cached object, so a full collection with many long
    sessions in memory costs in proportion to how many there are.
    """
    own = frozenset(tc.invalid_call_ids([message])) or None
    convert = _assistant if message.role == "assistant" else _user
    wire = convert(message, invalid | own if own else invalid)
    if len(wire) == 1:
        return id(message.content), len(message.content), invalid, wire[0], encode_item(wire[0]), own
    return (id(message.content), len(message.content), invalid, tuple(wire),
            tuple(encode_item(w) for w in wire), own)


def image_part(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{item['mimeType']};base64,{item['data']}"}}


def _user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string when there is only text: many compatible servers accept nothing else."""
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _user(message: Message, invalid: frozenset[str]) -> list[dict[str, Any]]:
    tool_messages, parts = [], []
    for item in message.content:
        kind = item["type"]
        if kind == "toolResponse" and item["id"] in invalid:
            parts.append({"type": "text", "text": tc.invalid_call_text(item)})
        elif kind == "toolResponse":
            tool_messages.append({"role": "tool", "tool_call_id": item["id"], "content": tc.result_text(item)})
            parts.extend(image_part(img) for img in tc.result_images(item))
        elif kind == "text" and item["text"]:
            parts.append({"type": "text", "text": item["text"]})
        elif kind == "image":
            parts.append(image_part(item))
    if parts:
        tool_messages.append({"role": "user", "content": _user_content(parts)})
    return tool_messages


def _assistant(message: Message, invalid: frozenset[str]) -> list[dict[str, Any]]:
    text = "".join(i["text"] for i in message.content if i["type"] == "text")
    calls = [{"id": i["id"], "type": "function",
              "function": {"name": i["toolCall"]["value"]["name"],
                           "arguments": json.dumps(tc.call_arguments(i))}}
             for i in message.tool_requests() if i["id"] not in invalid]
    if not text and not calls:
        return []
    wire: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        wire["tool_calls"] = calls
    return [wire]


# --- response ---------------------------------------------------------------------

def to_usage(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"), raw.get("total_tokens"))


def from_response(body: dict[str, Any], fallback_model: str) -> ProviderReply:
    """A ProviderReply from a chat-completions JSON answer."""
    wire = body["choices"][0]["message"]
    builder = ReplyBuilder()
    if wire.get("content"):
        builder.text(wire["content"])
    for call in wire.get("tool_calls") or []:
        function = call["function"]
        builder.call(tc.parse_arguments(call.get("id") or tc.new_call_id(), function["name"],
                                        function.get("arguments")))
    return builder.reply(to_usage(body.get("usage")), body.get("model") or fallback_model)


class ChatStreamAssembler:
    """Folds chat-completion chunks into events and, at the end, one ProviderReply.

    Tool-call fragments arrive keyed by ``index``: the id and name first, then
    pieces of the JSON arguments. A call is complete when a later index starts
    or the stream ends.
    """

    def __init__(self, fallback_model: str):
        self.model = fallback_model
        self.builder = ReplyBuilder()
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage = Usage()

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = to_usage(chunk["usage"])
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events.append(self.builder.text(delta["content"]))
            for fragment in delta.get("tool_calls") or []:
                events.extend(self._fragment(fragment))
        return events

    def _fragment(self, fragment: dict[str, Any]) -> list[StreamEvent]:
        index = fragment.get("index", len(self.calls))
        events = [] if index in self.calls else self._flush(below=index)
        call = self.calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
        function = fragment.get("function") or {}
        call["id"] = fragment.get("id") or call["id"]
        call["name"] += function.get("name") or ""
        call["arguments"] += function.get("arguments") or ""
        return events

    def _flush(self, below: int | None = None) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if call.get("done") or (below is not None and index >= below):
                continue
            call["done"] = True
            item = tc.parse_arguments(call["id"] or tc.new_call_id(), call["name"], call["arguments"])
            events.append(self.builder.call(item))
        return events

    def finish(self) -> list[StreamEvent]:
        return [*self._flush(), self.builder.reply(self.usage, self.model)]


def parse_chat_stream(lines: Iterator[str], fallback_model: str,
                      on_error: Callable[[int, str], ProviderError]) -> Iterator[StreamEvent]:
    """Events from a chat-completions SSE stream (``data: {...}`` ... ``data: [DONE]``).

    An ``{"error": ...}`` chunk mid-stream is raised through ``on_error``.
    """
    assembler = ChatStreamAssembler(fallback_model)
    for _event, data in sse_events(lines):
        if data.strip() == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("error"):
            code = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
            raise on_error(code if isinstance(code, int) else 500, data)
        yield from assembler.feed(chunk)
    yield from assembler.finish()
