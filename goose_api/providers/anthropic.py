"""Anthropic Messages API.

Settings: ``ANTHROPIC_API_KEY`` (required), ``ANTHROPIC_HOST`` (default
https://api.anthropic.com). The system prompt is top-level; tool calls are
``tool_use`` blocks and results ``tool_result`` blocks (failed ones with
``is_error``) at the start of the next user message. Roles must strictly
alternate, so consecutive same-role goose messages are merged.

Prompt caching: ``cache_control`` marks the system prompt, the last tool and
the last turn, so each call reads the previous call's prefix from the cache
(a tenth of the price) instead of paying for the whole history again; the
cache's reads and writes are reported in the usage.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import (
    END_TURN,
    MAX_TOKENS,
    TOOL_USE,
    ProviderReply,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    ToolSpec,
    Usage,
    cut_off,
)
from goose_api.providers.capabilities import image_note, takes_images
from goose_api.providers.http import (
    HttpProvider,
    WireRequest,
    classify_http,
    env_value,
    join_url,
    require_env,
    sse_events,
)
from goose_api.providers.tool_names import ToolNames
from goose_api.settings import Settings

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # required by the API; every Claude model allows at least this
CACHE = {"type": "ephemeral"}
STOP_REASONS = {"max_tokens": MAX_TOKENS, "model_context_window_exceeded": MAX_TOKENS, "tool_use": TOOL_USE}
STREAM_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                       "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                       "api_error": 500, "overloaded_error": 529}


# --- request ----------------------------------------------------------------------

def image_block(item: dict[str, Any], text_only: str | None = None) -> dict[str, Any]:
    """An image block, or for a model that takes no images (``text_only`` names it) a note."""
    if text_only is not None:
        return {"type": "text", "text": image_note(conv.image_mime_type(item), text_only)}
    return {"type": "image", "source": {"type": "base64", "media_type": conv.image_mime_type(item), "data": conv.image_data(item)}}


def tool_result_block(response: dict[str, Any], text_only: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": response["id"]}
    if tc.is_error(response):
        return {**block, "content": tc.error_text(response), "is_error": True}
    text = tc.result_text(response)
    content = ([{"type": "text", "text": text}] if text else []) + \
        [image_block(i, text_only) for i in tc.result_images(response)]
    return {**block, "content": content} if content else block


def _blocks(message: Message, invalid: set[str], names: ToolNames, text_only: str | None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for item in message.content:
        kind = conv.kind(item)
        if kind == "text" and conv.text_of(item).strip():
            blocks.append({"type": "text", "text": conv.text_of(item)})
        elif kind == "image":
            blocks.append(image_block(item, text_only))
        elif kind == "toolRequest" and conv.call_id(item) not in invalid:
            blocks.append({"type": "tool_use", "id": conv.call_id(item), "name": names.wire(tc.call_name(item)),
                           "input": tc.call_arguments(item)})
        elif kind == "toolResponse" and conv.call_id(item) in invalid:
            blocks.append({"type": "text", "text": tc.invalid_call_text(item)})
        elif kind == "toolResponse":
            blocks.append(tool_result_block(item, text_only))
    return blocks


def to_messages(messages: list[Message], names: ToolNames | None = None,
                text_only: str | None = None) -> list[dict[str, Any]]:
    """Wire messages with strictly alternating roles and tool results first in each user turn."""
    invalid = tc.invalid_call_ids(messages)
    names = names or ToolNames(())
    wire: list[dict[str, Any]] = []
    for message in messages:
        blocks = _blocks(message, invalid, names, text_only)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == message.role:
            blocks = wire.pop()["content"] + blocks
        if message.role == "user":
            blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: results first, order kept
        wire.append({"role": message.role, "content": blocks})
    return wire


def _cached(block: dict[str, Any]) -> dict[str, Any]:
    return {**block, "cache_control": CACHE}


def messages_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
                  temperature: float | None, max_tokens: int | None, stream: bool,
                  names: ToolNames | None = None, text_only: str | None = None) -> dict[str, Any]:
    """The request, with cache breakpoints on the system prompt, the last tool and the last turn."""
    names = names or ToolNames(())
    wire = to_messages(messages, names, text_only)
    if wire:
        last = wire[-1]
        wire[-1] = {**last, "content": [*last["content"][:-1], _cached(last["content"][-1])]}
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS, "messages": wire}
    if system:
        body["system"] = [_cached({"type": "text", "text": system})]
    if tools:
        declared = [{"name": names.wire(t.name), "description": t.description, "input_schema": t.input_schema}
                    for t in tools]
        body["tools"] = [*declared[:-1], _cached(declared[-1])]
    if temperature is not None:
        body["temperature"] = temperature
    if stream:
        body["stream"] = True
    return body


# --- response ---------------------------------------------------------------------

def to_usage(raw: Mapping[str, Any] | None, output_tokens: int | None = None) -> Usage:
    """Input tokens include cache writes and reads: together they are the prompt's size."""
    raw = raw or {}
    prompt = [raw.get(k) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    total_in = sum(p for p in prompt if p) if any(p is not None for p in prompt) else None
    return Usage(total_in, output_tokens if output_tokens is not None else raw.get("output_tokens"),
                 cache_read_tokens=raw.get("cache_read_input_tokens"),
                 cache_write_tokens=raw.get("cache_creation_input_tokens"))


def stop_reason(raw: str | None, provider: str) -> str:
    """Our stop reason for Anthropic's. Raises: ProviderError when the model refused (``refusal``)."""
    if raw == "refusal":
        raise ProviderError(provider, ProviderError.CONTENT_FILTER,
                            "Claude declined to answer (stop_reason refusal: its safety classifiers stopped the "
                            "answer); rephrase the request")
    return STOP_REASONS.get(raw or "", END_TURN)


def finish(content: list[dict[str, Any]], usage: Usage, model: str, raw_stop: str | None,
           limit: int, provider: str = "anthropic") -> ProviderReply:
    reply = ProviderReply(Message("assistant", content), usage, model, stop_reason(raw_stop, provider))
    return cut_off(reply, limit, provider) if reply.stop_reason == MAX_TOKENS else reply


def from_response(body: dict[str, Any], names: ToolNames | None = None,
                  limit: int = DEFAULT_MAX_TOKENS) -> ProviderReply:
    names = names or ToolNames(())
    content: list[dict[str, Any]] = []
    for block in body["content"]:
        if block["type"] == "text" and block["text"]:
            content.append(conv.text(block["text"]))
        elif block["type"] == "tool_use":
            content.append(tc.parse_arguments(block["id"], names.goose(block["name"]), block.get("input")))
    return finish(content, to_usage(body.get("usage")), body["model"], body.get("stop_reason"), limit)


class _StreamState:
    def __init__(self, model: str, names: ToolNames, limit: int):
        self.model, self.names, self.limit = model, names, limit
        self.start_usage: dict[str, Any] = {}
        self.output_tokens: int | None = None
        self.stop: str | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.content: list[dict[str, Any]] = []

    def handle(self, data: dict[str, Any]) -> list[StreamEvent]:
        kind = data["type"]
        if kind == "message_start":
            self.model = data["message"].get("model") or self.model
            self.start_usage = data["message"].get("usage") or {}
        elif kind == "content_block_start":
            block = data["content_block"]
            self.blocks[data["index"]] = {**block, "parts": [block.get("text", "")]}
            if block["type"] == "text" and block.get("text"):
                return [TextDelta(block["text"])]
        elif kind == "content_block_delta":
            return self._delta(data["index"], data["delta"])
        elif kind == "content_block_stop":
            return self._stop(self.blocks.pop(data["index"]))
        elif kind == "message_delta":
            self.output_tokens = (data.get("usage") or {}).get("output_tokens", self.output_tokens)
            self.stop = (data.get("delta") or {}).get("stop_reason") or self.stop
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        block = self.blocks[index]
        if delta["type"] == "text_delta":
            block["parts"].append(delta["text"])
            return [TextDelta(delta["text"])]
        if delta["type"] == "input_json_delta":
            block["parts"].append(delta["partial_json"])
        return []

    def _stop(self, block: dict[str, Any]) -> list[StreamEvent]:
        if block["type"] == "text" and "".join(block["parts"]):
            self.content.append(conv.text("".join(block["parts"])))
        elif block["type"] == "tool_use":
            item = tc.parse_arguments(block["id"], self.names.goose(block["name"]), "".join(block["parts"]) or "{}")
            self.content.append(item)
            return [ToolCallReady(item)]
        return []

    def reply(self) -> ProviderReply:
        """The whole answer; a tool_use block still open when the stream ended (the limit cut it) is kept last."""
        for block in self.blocks.values():
            self._stop(block)
        return finish(self.content, to_usage(self.start_usage, self.output_tokens), self.model, self.stop,
                      self.limit)


class AnthropicProvider(HttpProvider):
    name = "anthropic"
    default_model = "claude-sonnet-4-0"
    required_env = ("ANTHROPIC_API_KEY",)

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError when ANTHROPIC_API_KEY is unset."""
        super().__init__(settings, model)
        self.api_key = require_env(settings, self.name, "ANTHROPIC_API_KEY")
        self.url = join_url(env_value(settings, "ANTHROPIC_HOST", "https://api.anthropic.com"), "v1/messages")
        self.limit = settings.max_tokens or DEFAULT_MAX_TOKENS

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        names = ToolNames(t.name for t in tools)
        text_only = None if takes_images(self.name, self.model, self.settings) else self.model
        body = messages_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens, stream=stream, names=names, text_only=text_only)
        return WireRequest(self.url, {"x-api-key": self.api_key, "anthropic-version": API_VERSION}, body,
                           names=names)

    def parse(self, body: dict[str, Any], wire: WireRequest) -> ProviderReply:
        return from_response(body, wire.names, self.limit)

    def parse_stream(self, lines: Iterator[str], wire: WireRequest) -> Iterator[StreamEvent]:
        state = _StreamState(self.model, wire.names, self.limit)
        for _event, raw in sse_events(lines):
            data = json.loads(raw)
            if data["type"] == "error":
                status = STREAM_ERROR_STATUS.get(data["error"].get("type"), 500)
                raise self.classify(status, raw, {})
            yield from state.handle(data)
            if data["type"] == "message_stop":
                break
        yield state.reply()

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        """Spend limits and billing answers are QUOTA (``failures.QUOTA``), not a wait-and-retry rate limit."""
        return classify_http(self.name, status, text, headers)
