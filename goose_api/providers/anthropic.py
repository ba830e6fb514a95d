"""Anthropic Messages API.

Settings: ``ANTHROPIC_API_KEY`` (required), ``ANTHROPIC_HOST`` (default
https://api.anthropic.com). The system prompt is top-level; tool calls are
``tool_use`` blocks and results ``tool_result`` blocks (failed ones with
``is_error``) at the start of the next user message. Roles must strictly
alternate, so consecutive same-role goose messages are merged.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ProviderReply, StreamEvent, TextDelta, ToolCallReady, ToolSpec, Usage
from goose_api.providers.http import (
    HttpProvider,
    WireRequest,
    classify_http,
    env_value,
    join_url,
    require_env,
    sse_events,
)
from goose_api.settings import Settings

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # required by the API; every Claude model allows at least this
CONTEXT_MARKERS = ("prompt is too long", "input is too long", "too many total text bytes")
STREAM_ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                       "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                       "api_error": 500, "overloaded_error": 529}


# --- request ----------------------------------------------------------------------

def image_block(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": item["mimeType"], "data": item["data"]}}


def tool_result_block(response: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": response["id"]}
    if tc.is_error(response):
        return {**block, "content": response["toolResult"]["error"], "is_error": True}
    text = tc.result_text(response)
    content = ([{"type": "text", "text": text}] if text else []) + \
        [image_block(i) for i in tc.result_images(response)]
    return {**block, "content": content} if content else block


def _blocks(message: Message, invalid: set[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for item in message.content:
        kind = item["type"]
        if kind == "text" and item["text"].strip():
            blocks.append({"type": "text", "text": item["text"]})
        elif kind == "image":
            blocks.append(image_block(item))
        elif kind == "toolRequest" and item["id"] not in invalid:
            blocks.append({"type": "tool_use", "id": item["id"], "name": item["toolCall"]["value"]["name"],
                           "input": tc.call_arguments(item)})
        elif kind == "toolResponse" and item["id"] in invalid:
            blocks.append({"type": "text", "text": tc.invalid_call_text(item)})
        elif kind == "toolResponse":
            blocks.append(tool_result_block(item))
    return blocks


def to_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Wire messages with strictly alternating roles and tool results first in each user turn."""
    invalid = tc.invalid_call_ids(messages)
    wire: list[dict[str, Any]] = []
    for message in messages:
        blocks = _blocks(message, invalid)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == message.role:
            blocks = wire.pop()["content"] + blocks
        if message.role == "user":
            blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: results first, order kept
        wire.append({"role": message.role, "content": blocks})
    return wire


def messages_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
                  temperature: float | None, max_tokens: int | None, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
                            "messages": to_messages(messages)}
    if system:
        body["system"] = system
    if tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                         for t in tools]
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
    return Usage(total_in, output_tokens if output_tokens is not None else raw.get("output_tokens"))


def from_response(body: dict[str, Any]) -> ProviderReply:
    content: list[dict[str, Any]] = []
    for block in body["content"]:
        if block["type"] == "text" and block["text"]:
            content.append(conv.text(block["text"]))
        elif block["type"] == "tool_use":
            content.append(tc.parse_arguments(block["id"], block["name"], block.get("input")))
    return ProviderReply(Message("assistant", content), to_usage(body.get("usage")), body["model"])


class _StreamState:
    def __init__(self, model: str):
        self.model = model
        self.start_usage: dict[str, Any] = {}
        self.output_tokens: int | None = None
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
            item = tc.parse_arguments(block["id"], block["name"], "".join(block["parts"]) or "{}")
            self.content.append(item)
            return [ToolCallReady(item)]
        return []

    def reply(self) -> ProviderReply:
        return ProviderReply(Message("assistant", self.content), to_usage(self.start_usage, self.output_tokens),
                             self.model)


class AnthropicProvider(HttpProvider):
    name = "anthropic"
    default_model = "claude-sonnet-4-0"
    required_env = ("ANTHROPIC_API_KEY",)

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError when ANTHROPIC_API_KEY is unset."""
        super().__init__(settings, model)
        self.api_key = require_env(settings, self.name, "ANTHROPIC_API_KEY")
        self.url = join_url(env_value(settings, "ANTHROPIC_HOST", "https://api.anthropic.com"), "v1/messages")

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        body = messages_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens, stream=stream)
        return WireRequest(self.url, {"x-api-key": self.api_key, "anthropic-version": API_VERSION}, body)

    def parse(self, body: dict[str, Any]) -> ProviderReply:
        return from_response(body)

    def parse_stream(self, lines: Iterator[str]) -> Iterator[StreamEvent]:
        state = _StreamState(self.model)
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
        return classify_http(self.name, status, text, headers, context_markers=CONTEXT_MARKERS)
