"""OpenAI chat-completions answers -> goose messages, as pure functions.

Why the answer ended decides what becomes of it: ``length`` is an answer cut
at the output limit (kept, with a warning; a tool call it cut is not run),
``content_filter`` is a refusal to answer (an error, never an empty answer
saved as one). DeepSeek's ``reasoning_content`` is kept as goose ``thinking``
content, since DeepSeek must be sent it back on tool-call turns.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import END_TURN, MAX_TOKENS, TOOL_USE, ProviderReply, ReplyBuilder, StreamEvent, Usage
from goose_api.providers.http import sse_events
from goose_api.providers.tool_names import ToolNames

NO_NAMES = ToolNames(())


def to_usage(raw: dict[str, Any] | None) -> Usage:
    """OpenAI's counts; the cached part of the prompt as OpenAI (or DeepSeek) reports it."""
    raw = raw or {}
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:
        cached = raw.get("prompt_cache_hit_tokens")
    return Usage(raw.get("prompt_tokens"), raw.get("completion_tokens"), raw.get("total_tokens"),
                 cache_read_tokens=cached)


def stop_reason(finish: str | None, provider: str) -> str:
    """Our stop reason for a ``finish_reason``. Raises: ProviderError when the service filtered the answer."""
    if finish == "length":
        return MAX_TOKENS
    if finish == "content_filter":
        raise ProviderError(provider, ProviderError.CONTENT_FILTER,
                            "the answer was stopped by the service's content filter (finish_reason content_filter); "
                            "rephrase the request")
    return TOOL_USE if finish in ("tool_calls", "function_call") else END_TURN


def from_response(body: dict[str, Any], fallback_model: str, *, names: ToolNames = NO_NAMES,
                  limit: int | None = None, provider: str = "openai") -> ProviderReply:
    """A ProviderReply from a chat-completions JSON answer. Raises: ProviderError (a filtered answer)."""
    choice = body["choices"][0]
    wire = choice["message"]
    stop = stop_reason(choice.get("finish_reason"), provider)
    builder = ReplyBuilder()
    if wire.get("reasoning_content"):
        builder.thinking(wire["reasoning_content"])
    text = wire.get("content") or wire.get("refusal")  # a refusal is the model's own answer, in words
    if text:
        builder.text(text)
    for call in wire.get("tool_calls") or []:
        function = call["function"]
        builder.call(tc.parse_arguments(call.get("id") or tc.new_call_id(), names.goose(function["name"]),
                                        function.get("arguments")))
    return builder.reply(to_usage(body.get("usage")), body.get("model") or fallback_model, stop, limit,
                         provider)


class ChatStreamAssembler:
    """Folds chat-completion chunks into events and, at the end, one ProviderReply.

    Tool-call fragments arrive keyed by ``index``: the id and name first, then
    pieces of the JSON arguments. A call is complete when a later index starts,
    when a fragment with a new id reuses its index (some servers send every
    parallel call at index 0), or when the stream ends.
    """

    def __init__(self, fallback_model: str, *, names: ToolNames = NO_NAMES, limit: int | None = None,
                 provider: str = "openai"):
        self.model = fallback_model
        self.names, self.limit, self.provider = names, limit, provider
        self.builder = ReplyBuilder()
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage = Usage()
        self.finish_reason: str | None = None

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = to_usage(chunk["usage"])
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                self.builder.thinking(delta["reasoning_content"])
            if delta.get("content"):
                events.append(self.builder.text(delta["content"]))
            for fragment in delta.get("tool_calls") or []:
                events.extend(self._fragment(fragment))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return events

    def _fragment(self, fragment: dict[str, Any]) -> list[StreamEvent]:
        index = fragment.get("index", len(self.calls))
        current = self.calls.get(index)
        new_id = fragment.get("id")
        events: list[StreamEvent] = []
        if current is None:
            events = self._flush(below=index)
        elif new_id and current["id"] and new_id != current["id"]:  # another call at a reused index
            events = [self._complete(current)] if not current.get("done") else []
            current = None
        if current is None:
            current = self.calls[index] = {"id": None, "name": "", "arguments": ""}
        function = fragment.get("function") or {}
        current["id"] = new_id or current["id"]
        current["name"] += function.get("name") or ""
        current["arguments"] += function.get("arguments") or ""
        return events

    def _complete(self, call: dict[str, Any]) -> StreamEvent:
        call["done"] = True
        item = tc.parse_arguments(call["id"] or tc.new_call_id(), self.names.goose(call["name"]), call["arguments"])
        return self.builder.call(item)

    def _flush(self, below: int | None = None) -> list[StreamEvent]:
        return [self._complete(self.calls[index]) for index in sorted(self.calls)
                if not self.calls[index].get("done") and (below is None or index < below)]

    def finish(self) -> list[StreamEvent]:
        """The calls still open, and the whole reply. Raises: ProviderError (a filtered answer)."""
        stop = stop_reason(self.finish_reason, self.provider)
        return [*self._flush(), self.builder.reply(self.usage, self.model, stop, self.limit, self.provider)]


def parse_chat_stream(lines: Iterator[str], fallback_model: str, on_error: Callable[[int, str], ProviderError],
                      *, names: ToolNames = NO_NAMES, limit: int | None = None,
                      provider: str = "openai") -> Iterator[StreamEvent]:
    """Events from a chat-completions SSE stream (``data: {...}`` ... ``data: [DONE]``).

    An ``{"error": ...}`` chunk mid-stream is raised through ``on_error``.
    """
    assembler = ChatStreamAssembler(fallback_model, names=names, limit=limit, provider=provider)
    for _event, data in sse_events(lines):
        if data.strip() == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("error"):
            code = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
            raise on_error(code if isinstance(code, int) else 500, data)
        yield from assembler.feed(chunk)
    yield from assembler.finish()
