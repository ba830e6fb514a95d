"""Google Gemini ``generateContent`` / ``streamGenerateContent`` (SSE).

Settings: ``GOOGLE_API_KEY`` (required, sent as ``x-goog-api-key``),
``GOOGLE_HOST`` (default https://generativelanguage.googleapis.com). Roles
are ``user``/``model``; the system prompt is ``systemInstruction``; tools are
``functionDeclarations`` whose schemas are cut down to the OpenAPI subset
Gemini accepts. Gemini calls tools by name (ids are optional), so results
are matched back by name and we mint ids where Gemini gives none.

Not carried: Gemini's ``thoughtSignature`` on function calls (goose's message
format has no place for it); models that require it back will refuse a
multi-turn tool conversation.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping
from urllib.parse import quote

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
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

UNSUPPORTED_SCHEMA_KEYS = {"$schema", "$id", "$defs", "definitions", "additionalProperties", "patternProperties",
                           "examples", "title", "exclusiveMinimum", "exclusiveMaximum", "discriminator", "default"}
CONTEXT_MARKERS = ("exceeds the maximum number of tokens", "input token count", "context window")
AUTH_MARKERS = ("api key not valid", "api_key_invalid", "permission_denied")
RATE_MARKERS = ("resource_exhausted",)


# --- request ----------------------------------------------------------------------

def clean_schema(schema: Any) -> Any:
    """A JSON schema reduced to what Gemini's function declarations accept (recursively)."""
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "format" and schema.get("type") == "string" and value not in ("enum", "date-time"):
            continue
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(prop) for name, prop in value.items()}
        else:
            out[key] = clean_schema(value)
    return out


def to_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        if tool.input_schema.get("properties"):  # Gemini rejects an object schema with no properties
            declaration["parameters"] = clean_schema(tool.input_schema)
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def inline_part(item: dict[str, Any]) -> dict[str, Any]:
    return {"inlineData": {"mimeType": item["mimeType"], "data": item["data"]}}


def _response_part(item: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    key, value = ("error", item["toolResult"]["error"]) if tc.is_error(item) else ("output", tc.result_text(item))
    return {"functionResponse": {"name": names.get(item["id"], "unknown_tool"), "response": {key: value}}}


def _parts(message: Message, invalid: set[str], names: dict[str, str]) -> list[dict[str, Any]]:
    results, parts = [], []
    for item in message.content:
        kind = item["type"]
        if kind == "text" and item["text"]:
            parts.append({"text": item["text"]})
        elif kind == "image":
            parts.append(inline_part(item))
        elif kind == "toolRequest" and item["id"] not in invalid:
            parts.append({"functionCall": {"name": item["toolCall"]["value"]["name"],
                                           "args": tc.call_arguments(item)}})
        elif kind == "toolResponse" and item["id"] in invalid:
            parts.append({"text": tc.invalid_call_text(item)})
        elif kind == "toolResponse":
            results.append(_response_part(item, names))
            parts.extend(inline_part(i) for i in tc.result_images(item))
    return results + parts


def to_contents(messages: list[Message]) -> list[dict[str, Any]]:
    """Gemini contents; consecutive same-role turns are merged so calls and responses pair up."""
    invalid, names = tc.invalid_call_ids(messages), tc.tool_names(messages)
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, invalid, names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def generate_body(system: str, messages: list[Message], tools: list[ToolSpec], *,
                  temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": to_contents(messages)}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if tools:
        body["tools"] = to_tools(tools)
    config = {k: v for k, v in (("temperature", temperature), ("maxOutputTokens", max_tokens)) if v is not None}
    if config:
        body["generationConfig"] = config
    return body


# --- response ---------------------------------------------------------------------

def to_usage(raw: Mapping[str, Any] | None) -> Usage:
    raw = raw or {}
    return Usage(raw.get("promptTokenCount"), raw.get("candidatesTokenCount"), raw.get("totalTokenCount"))


def reply_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of the first candidate (none when it was blocked or empty)."""
    candidates = body.get("candidates") or [{}]
    return (candidates[0].get("content") or {}).get("parts") or []


def convert_part(part: dict[str, Any]) -> dict[str, Any] | None:
    """One goose content item from a Gemini part (thoughts are not part of the answer)."""
    if "functionCall" in part:
        call = part["functionCall"]
        return tc.parse_arguments(call.get("id") or tc.new_call_id("gemini"), call["name"], call.get("args"))
    if part.get("text") and not part.get("thought"):
        return conv.text(part["text"])
    return None


def collect(builder: ReplyBuilder, body: dict[str, Any]) -> Iterator[StreamEvent]:
    """Feed one GenerateContentResponse's parts to ``builder``, yielding the events."""
    for item in filter(None, map(convert_part, reply_parts(body))):
        yield builder.text(item["text"]) if item["type"] == "text" else builder.call(item)


def from_response(body: dict[str, Any], fallback_model: str) -> ProviderReply:
    builder = ReplyBuilder()
    list(collect(builder, body))
    return builder.reply(to_usage(body.get("usageMetadata")), body.get("modelVersion") or fallback_model)


class GoogleProvider(HttpProvider):
    name = "google"
    default_model = "gemini-2.5-pro"
    required_env = ("GOOGLE_API_KEY",)

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError when GOOGLE_API_KEY is unset."""
        super().__init__(settings, model)
        self.api_key = require_env(settings, self.name, "GOOGLE_API_KEY")
        self.host = env_value(settings, "GOOGLE_HOST", "https://generativelanguage.googleapis.com")

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        method = "streamGenerateContent" if stream else "generateContent"
        url = join_url(self.host, f"v1beta/models/{quote(self.model, safe='.-_')}:{method}")
        body = generate_body(system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens)
        return WireRequest(url, {"x-goog-api-key": self.api_key}, body, {"alt": "sse"} if stream else {})

    def parse(self, body: dict[str, Any]) -> ProviderReply:
        return from_response(body, self.model)

    def parse_stream(self, lines: Iterator[str]) -> Iterator[StreamEvent]:
        """Each SSE event is a whole GenerateContentResponse; the last usage counts."""
        builder, usage, model = ReplyBuilder(), Usage(), self.model
        for _event, data in sse_events(lines):
            chunk = json.loads(data)
            if chunk.get("error"):
                raise self.classify(int(chunk["error"].get("code") or 500), data, {})
            usage = to_usage(chunk["usageMetadata"]) if chunk.get("usageMetadata") else usage
            model = chunk.get("modelVersion") or model
            yield from collect(builder, chunk)
        yield builder.reply(usage, model)

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers, context_markers=CONTEXT_MARKERS,
                             auth_markers=AUTH_MARKERS, rate_markers=RATE_MARKERS)
