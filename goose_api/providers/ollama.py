"""Ollama's native ``/api/chat`` (JSON, or NDJSON when streamed).

Settings: ``OLLAMA_HOST`` (default localhost:11434; a bare host:port gets
``http://``). No key. Tool declarations are OpenAI-shaped, but call
arguments are JSON *objects*, images are a per-message list of base64
strings, and tool results are ``role: "tool"`` messages naming the tool.
Ollama gives tool calls no ids in older versions, so we mint them.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
from goose_api.providers.http import HttpProvider, WireRequest, classify_http, env_value, join_url, ndjson_objects
from goose_api.providers.openai_format import to_tools
from goose_api.settings import Settings

CONTEXT_MARKERS = ("context length", "exceeds the context")


# --- request ----------------------------------------------------------------------

def _user(message: Message, invalid: set[str], names: dict[str, str]) -> list[dict[str, Any]]:
    out, texts, images = [], [], []
    for item in message.content:
        kind = item["type"]
        if kind == "toolResponse" and item["id"] in invalid:
            texts.append(tc.invalid_call_text(item))
        elif kind == "toolResponse":
            out.append({"role": "tool", "content": tc.result_text(item), "tool_name": names.get(item["id"], "")})
            images.extend(i["data"] for i in tc.result_images(item))
        elif kind == "text" and item["text"]:
            texts.append(item["text"])
        elif kind == "image":
            images.append(item["data"])
    if texts or images:
        out.append({"role": "user", "content": "\n\n".join(texts), **({"images": images} if images else {})})
    return out


def _assistant(message: Message, invalid: set[str]) -> list[dict[str, Any]]:
    calls = [{"function": {"name": i["toolCall"]["value"]["name"], "arguments": tc.call_arguments(i)}}
             for i in message.tool_requests() if i["id"] not in invalid]
    text = message.text()
    if not text and not calls:
        return []
    return [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]


def to_messages(system: str, messages: list[Message]) -> list[dict[str, Any]]:
    invalid, names = tc.invalid_call_ids(messages), tc.tool_names(messages)
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        out.extend(_assistant(message, invalid) if message.role == "assistant" else _user(message, invalid, names))
    return out


def chat_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
              temperature: float | None, max_tokens: int | None, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": to_messages(system, messages), "stream": stream}
    if tools:
        body["tools"] = to_tools(tools)
    options = {k: v for k, v in (("temperature", temperature), ("num_predict", max_tokens)) if v is not None}
    if options:
        body["options"] = options
    return body


# --- response ---------------------------------------------------------------------

def to_usage(body: Mapping[str, Any]) -> Usage:
    return Usage(body.get("prompt_eval_count"), body.get("eval_count"))


def tool_requests(wire: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [tc.parse_arguments(call.get("id") or tc.new_call_id("ollama"), call["function"]["name"],
                               call["function"].get("arguments"))
            for call in wire.get("tool_calls") or []]


def collect(builder: ReplyBuilder, wire: Mapping[str, Any]) -> Iterator[StreamEvent]:
    """Feed one message (or streamed piece of one) to ``builder``, yielding the events."""
    if wire.get("content"):
        yield builder.text(wire["content"])
    for item in tool_requests(wire):
        yield builder.call(item)


def from_response(body: dict[str, Any]) -> ProviderReply:
    builder = ReplyBuilder()
    list(collect(builder, body["message"]))
    return builder.reply(to_usage(body), body.get("model", ""))


class OllamaProvider(HttpProvider):
    name = "ollama"
    default_model = "qwen2.5"
    required_env = ()

    def __init__(self, settings: Settings, model: str | None = None):
        super().__init__(settings, model)
        self.url = join_url(env_value(settings, "OLLAMA_HOST", "localhost:11434"), "api/chat")

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        body = chat_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                         max_tokens=self.settings.max_tokens, stream=stream)
        return WireRequest(self.url, {}, body)

    def parse(self, body: dict[str, Any]) -> ProviderReply:
        return from_response(body)

    def parse_stream(self, lines: Iterator[str]) -> Iterator[StreamEvent]:
        """One JSON object per line; tool calls arrive whole; the ``done`` line carries the counts."""
        builder, usage, model = ReplyBuilder(), Usage(), self.model
        for chunk in ndjson_objects(lines):
            if chunk.get("error"):
                raise self.classify(500, str(chunk["error"]), {})
            yield from collect(builder, chunk.get("message") or {})
            model = chunk.get("model") or model
            if chunk.get("done"):
                usage = to_usage(chunk)
                break
        yield builder.reply(usage, model)

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers, context_markers=CONTEXT_MARKERS)
