"""Ollama's native ``/api/chat`` (JSON, or NDJSON when streamed).

Settings: ``OLLAMA_HOST`` (default localhost:11434; a bare host:port gets
``http://``). No key. Tool declarations are OpenAI-shaped, but call
arguments are JSON *objects*, images are a per-message list of base64
strings, and tool results are ``role: "tool"`` messages naming the tool.
Ollama gives tool calls no ids in older versions, so we mint them.

Ollama's default context is small (2048-4096 tokens) and it silently cuts the
*start* of a longer prompt: the system prompt and the tools go first. So every
request sends ``options.num_ctx``, the model's context limit, and an answer
whose ``prompt_eval_count`` is far below what was sent carries a warning.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import END_TURN, MAX_TOKENS, ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
from goose_api.providers.capabilities import context_limit, image_note, takes_images
from goose_api.providers.http import HttpProvider, WireRequest, classify_http, env_value, join_url, ndjson_objects
from goose_api.providers.openai_format import to_tools
from goose_api.providers.tool_names import ToolNames
from goose_api.settings import Settings

CHARS_PER_TOKEN = 4
CUT_SHARE = 0.5  # Ollama counted under half of the estimated prompt: it must have dropped the rest


# --- request ----------------------------------------------------------------------

def _user(message: Message, invalid: set[str], names: dict[str, str], text_only: str | None) -> list[dict[str, Any]]:
    out, texts, images = [], [], []
    for item in message.content:
        kind = conv.kind(item)
        if kind == "toolResponse" and conv.call_id(item) in invalid:
            texts.append(tc.invalid_call_text(item))
        elif kind == "toolResponse":
            result = tc.result_text(item)
            if text_only is not None:
                result = "\n".join([result, *(image_note(conv.image_mime_type(i), text_only) for i in tc.result_images(item))])
            else:
                images.extend(conv.image_data(i) for i in tc.result_images(item))
            out.append({"role": "tool", "content": result, "tool_name": names.get(conv.call_id(item), "")})
        elif kind == "text" and conv.text_of(item):
            texts.append(conv.text_of(item))
        elif kind == "image" and text_only is not None:
            texts.append(image_note(conv.image_mime_type(item), text_only))
        elif kind == "image":
            images.append(conv.image_data(item))
    if texts or images:
        out.append({"role": "user", "content": "\n\n".join(texts), **({"images": images} if images else {})})
    return out


def _assistant(message: Message, invalid: set[str], names: ToolNames) -> list[dict[str, Any]]:
    calls = [{"function": {"name": names.wire(tc.call_name(i)), "arguments": tc.call_arguments(i)}}
             for i in message.tool_requests() if conv.call_id(i) not in invalid]
    text = message.text()
    if not text and not calls:
        return []
    return [{"role": "assistant", "content": text, **({"tool_calls": calls} if calls else {})}]


def to_messages(system: str, messages: list[Message], names: ToolNames | None = None,
                text_only: str | None = None) -> list[dict[str, Any]]:
    names = names or ToolNames(())
    invalid = tc.invalid_call_ids(messages)
    called = {call_id: names.wire(name) for call_id, name in tc.tool_names(messages).items()}
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        out.extend(_assistant(message, invalid, names) if message.role == "assistant"
                   else _user(message, invalid, called, text_only))
    return out


def chat_body(model: str, system: str, messages: list[Message], tools: list[ToolSpec], *,
              temperature: float | None, max_tokens: int | None, stream: bool, num_ctx: int | None = None,
              names: ToolNames | None = None, text_only: str | None = None) -> dict[str, Any]:
    names = names or ToolNames(t.name for t in tools)
    body: dict[str, Any] = {"model": model, "messages": to_messages(system, messages, names, text_only),
                            "stream": stream}
    if tools:
        body["tools"] = to_tools(tools, names)
    options = {k: v for k, v in (("temperature", temperature), ("num_predict", max_tokens), ("num_ctx", num_ctx))
               if v is not None}
    if options:
        body["options"] = options
    return body


def prompt_estimate(body: Mapping[str, Any]) -> int:
    """About how many tokens the prompt is: its text (not its images) at four characters a token."""
    chars = sum(len(m.get("content") or "") + len(json.dumps(m.get("tool_calls") or [])) for m in body["messages"])
    return (chars + len(json.dumps(body.get("tools") or []))) // CHARS_PER_TOKEN


# --- response ---------------------------------------------------------------------

def to_usage(body: Mapping[str, Any]) -> Usage:
    return Usage(body.get("prompt_eval_count"), body.get("eval_count"))


def tool_requests(wire: Mapping[str, Any], names: ToolNames) -> list[dict[str, Any]]:
    return [tc.parse_arguments(call.get("id") or tc.new_call_id("ollama"), names.goose(call["function"]["name"]),
                               call["function"].get("arguments"))
            for call in wire.get("tool_calls") or []]


def collect(builder: ReplyBuilder, wire: Mapping[str, Any], names: ToolNames) -> Iterator[StreamEvent]:
    """Feed one message (or streamed piece of one) to ``builder``, yielding the events."""
    if wire.get("content"):
        yield builder.text(wire["content"])
    for item in tool_requests(wire, names):
        yield builder.call(item)


def from_response(body: dict[str, Any], names: ToolNames | None = None, limit: int | None = None) -> ProviderReply:
    """A ProviderReply from a ``/api/chat`` answer (or a stream's pieces folded into one)."""
    builder = ReplyBuilder()
    list(collect(builder, body.get("message") or {}, names or ToolNames(())))
    stop = MAX_TOKENS if body.get("done_reason") == "length" else END_TURN
    return builder.reply(to_usage(body), body.get("model", ""), stop, limit, "ollama")


class OllamaProvider(HttpProvider):
    name = "ollama"
    default_model = "qwen2.5"
    required_env = ()

    def __init__(self, settings: Settings, model: str | None = None):
        super().__init__(settings, model)
        self.url = join_url(env_value(settings, "OLLAMA_HOST", "localhost:11434"), "api/chat")
        self.num_ctx = context_limit(self.model, settings)

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        names = ToolNames(t.name for t in tools)
        text_only = None if takes_images(self.name, self.model, self.settings) else self.model
        body = chat_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                         max_tokens=self.settings.max_tokens, stream=stream, num_ctx=self.num_ctx, names=names,
                         text_only=text_only)
        return WireRequest(self.url, {}, body, names=names)

    def parse(self, body: dict[str, Any], wire: WireRequest) -> ProviderReply:
        return self._checked(from_response({"model": self.model, **body}, wire.names, self.settings.max_tokens),
                             body, wire)

    def parse_stream(self, lines: Iterator[str], wire: WireRequest) -> Iterator[StreamEvent]:
        """One JSON object per line; tool calls arrive whole; the ``done`` line carries the counts."""
        builder, final, model = ReplyBuilder(), {}, self.model
        for chunk in ndjson_objects(lines):
            if chunk.get("error"):
                raise self.classify(500, str(chunk["error"]), {})
            yield from collect(builder, chunk.get("message") or {}, wire.names)
            model = chunk.get("model") or model
            if chunk.get("done"):
                final = chunk
                break
        stop = MAX_TOKENS if final.get("done_reason") == "length" else END_TURN
        yield self._checked(builder.reply(to_usage(final), model, stop, self.settings.max_tokens, self.name), final, wire)

    def _checked(self, reply: ProviderReply, final: Mapping[str, Any], wire: WireRequest) -> ProviderReply:
        """The reply, with a warning when Ollama read far fewer prompt tokens than were sent."""
        counted, sent = final.get("prompt_eval_count"), prompt_estimate(wire.body)
        if isinstance(counted, int) and counted < sent * CUT_SHARE:
            reply.warnings.append(
                f"Ollama read only {counted} prompt tokens of about {sent} sent: it cut the start of the "
                f"conversation (the system prompt and the tools first). It was asked for a {self.num_ctx}-token "
                "context; give the model a larger one (model_capabilities context_limit, or the model's num_ctx "
                "in Ollama) or use a model with a larger window")
        return reply

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers)
