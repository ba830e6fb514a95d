"""Google Gemini ``generateContent`` / ``streamGenerateContent`` (SSE).

Settings: ``GOOGLE_API_KEY`` (required, sent as ``x-goog-api-key``),
``GOOGLE_HOST`` (default https://generativelanguage.googleapis.com). Roles
are ``user``/``model``; the system prompt is ``systemInstruction``; tools are
``functionDeclarations`` whose schemas are cleaned to the subset Gemini
accepts (``gemini_schema``) and whose names start with a letter or ``_``.
Gemini calls tools by name (ids are optional), so results are matched back by
name and we mint ids where Gemini gives none.

A function call's ``thoughtSignature`` is kept on its goose ``toolRequest``
(goose's own field, so the session file stays goose's) and sent back with the
call: Gemini 3 refuses a tool loop without it. A call made by another
provider gets the placeholder Google documents for such histories.

Answers: ``MAX_TOKENS`` is kept with a warning; safety, recitation and blocked
prompts are errors; a malformed function call is retried once (``INVALID_ANSWER``).
A 429 waits the ``RetryInfo.retryDelay`` of its body; a per-day quota is not retried.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping
from urllib.parse import quote

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import failures
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import END_TURN, MAX_TOKENS, ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
from goose_api.providers.capabilities import image_note, takes_images
from goose_api.providers.gemini_schema import clean_schema
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

AUTH_MARKERS = ("api key not valid", "api_key_invalid", "permission_denied")
RATE_MARKERS = ("resource_exhausted",)
SKIP_SIGNATURE = "skip_thought_signature_validator"  # Google's placeholder for calls it did not make
BLOCKED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE", "IMAGE_SAFETY",
           "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR")
MALFORMED = ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE", "OTHER")


# --- request ----------------------------------------------------------------------

def to_tools(tools: list[ToolSpec], names: ToolNames | None = None) -> list[dict[str, Any]]:
    names = names or ToolNames((), letter_first=True)
    declarations = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": names.wire(tool.name), "description": tool.description}
        parameters = clean_schema(tool.input_schema)
        if parameters.get("properties"):  # Gemini rejects an object schema with no properties
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def inline_part(item: dict[str, Any], text_only: str | None = None) -> dict[str, Any]:
    if text_only is not None:
        return {"text": image_note(conv.image_mime_type(item), text_only)}
    return {"inlineData": {"mimeType": conv.image_mime_type(item), "data": conv.image_data(item)}}


class _Converter:
    """One request's conversion: tool names both ways, signatures, images."""

    def __init__(self, messages: list[Message], names: ToolNames, text_only: str | None, signatures: bool):
        self.invalid, self.called = tc.invalid_call_ids(messages), tc.tool_names(messages)
        self.names, self.text_only, self.signatures = names, text_only, signatures

    def call_part(self, item: dict[str, Any], placeholder: bool) -> dict[str, Any]:
        part: dict[str, Any] = {"functionCall": {"name": self.names.wire(tc.call_name(item)),
                                                 "args": tc.call_arguments(item)}}
        signature = conv.tool_call_signature(item) or (SKIP_SIGNATURE if placeholder else None)
        if signature:
            part["thoughtSignature"] = signature
        return part

    def response_part(self, item: dict[str, Any]) -> dict[str, Any]:
        key, value = ("error", tc.error_text(item)) if tc.is_error(item) else ("output", tc.result_text(item))
        name = self.names.wire(self.called.get(conv.call_id(item), "unknown_tool"))
        return {"functionResponse": {"name": name, "response": {key: value}}}

    def parts(self, message: Message) -> list[dict[str, Any]]:
        results, parts = [], []
        # Gemini signs the first call of a step; a step with no signature at all came from another provider.
        placeholder = self.signatures and not any(map(conv.tool_call_signature, message.tool_requests()))
        for item in message.content:
            kind = conv.kind(item)
            if kind == "text" and conv.text_of(item):
                parts.append({"text": conv.text_of(item)})
            elif kind == "image":
                parts.append(inline_part(item, self.text_only))
            elif kind == "toolRequest" and conv.call_id(item) not in self.invalid:
                parts.append(self.call_part(item, placeholder))
            elif kind == "toolResponse" and conv.call_id(item) in self.invalid:
                parts.append({"text": tc.invalid_call_text(item)})
            elif kind == "toolResponse":
                results.append(self.response_part(item))
                parts.extend(inline_part(i, self.text_only) for i in tc.result_images(item))
        return results + parts


def to_contents(messages: list[Message], names: ToolNames | None = None, text_only: str | None = None,
                signatures: bool = False) -> list[dict[str, Any]]:
    """Gemini contents; consecutive same-role turns are merged so calls and responses pair up.

    ``signatures``: every call carries a thoughtSignature (its own, or the placeholder): Gemini 3.
    """
    converter = _Converter(messages, names or ToolNames((), letter_first=True), text_only, signatures)
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = converter.parts(message)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def generate_body(system: str, messages: list[Message], tools: list[ToolSpec], *,
                  temperature: float | None, max_tokens: int | None, names: ToolNames | None = None,
                  text_only: str | None = None, signatures: bool = False) -> dict[str, Any]:
    names = names or ToolNames((t.name for t in tools), letter_first=True)
    body: dict[str, Any] = {"contents": to_contents(messages, names, text_only, signatures)}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if tools:
        body["tools"] = to_tools(tools, names)
    config = {k: v for k, v in (("temperature", temperature), ("maxOutputTokens", max_tokens)) if v is not None}
    if config:
        body["generationConfig"] = config
    return body


# --- response ---------------------------------------------------------------------

def to_usage(raw: Mapping[str, Any] | None) -> Usage:
    """Thinking tokens are output tokens (and billed so): ``candidatesTokenCount`` leaves them out."""
    raw = raw or {}
    answer, thoughts = raw.get("candidatesTokenCount"), raw.get("thoughtsTokenCount")
    output = None if answer is None and thoughts is None else (answer or 0) + (thoughts or 0)
    return Usage(raw.get("promptTokenCount"), output, raw.get("totalTokenCount"),
                 cache_read_tokens=raw.get("cachedContentTokenCount"))


def reply_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of the first candidate (none when it was blocked or empty)."""
    candidates = body.get("candidates") or [{}]
    return (candidates[0].get("content") or {}).get("parts") or []


def convert_part(part: dict[str, Any], names: ToolNames) -> dict[str, Any] | None:
    """One goose content item from a Gemini part (thoughts are not part of the answer)."""
    if "functionCall" in part:
        call = part["functionCall"]
        return tc.parse_arguments(call.get("id") or tc.new_call_id("gemini"), names.goose(call["name"]),
                                  call.get("args"), part.get("thoughtSignature"))
    if part.get("text") and not part.get("thought"):
        return conv.text(part["text"])
    return None


def collect(builder: ReplyBuilder, body: dict[str, Any], names: ToolNames) -> Iterator[StreamEvent]:
    """Feed one GenerateContentResponse's parts to ``builder``, yielding the events."""
    for item in filter(None, (convert_part(part, names) for part in reply_parts(body))):
        yield builder.text(conv.text_of(item)) if conv.kind(item) == "text" else builder.call(item)


def finish_reason(body: dict[str, Any]) -> str | None:
    candidates = body.get("candidates") or []
    return candidates[0].get("finishReason") if candidates else None


def stop_reason(body: dict[str, Any], reason: str | None, provider: str) -> str:
    """Our stop reason for Gemini's. Raises: ProviderError for a blocked prompt or answer, a malformed call."""
    blocked = (body.get("promptFeedback") or {}).get("blockReason")
    if blocked:
        raise ProviderError(provider, ProviderError.CONTENT_FILTER,
                            f"Gemini blocked the prompt (blockReason {blocked}); rephrase the request")
    if reason in BLOCKED:
        raise ProviderError(provider, ProviderError.CONTENT_FILTER,
                            f"Gemini stopped the answer (finishReason {reason}); rephrase the request")
    if reason in MALFORMED:
        raise ProviderError(provider, ProviderError.INVALID_ANSWER,
                            f"the model produced no usable answer (finishReason {reason})")
    if reason == "MISSING_THOUGHT_SIGNATURE":
        raise ProviderError(provider, ProviderError.BAD_REQUEST, "a function call was sent without its thoughtSignature")
    return MAX_TOKENS if reason == "MAX_TOKENS" else END_TURN


def from_response(body: dict[str, Any], fallback_model: str, names: ToolNames | None = None,
                  limit: int | None = None, provider: str = "google") -> ProviderReply:
    """A ProviderReply from a GenerateContentResponse. Raises: ProviderError (blocked, malformed)."""
    stop = stop_reason(body, finish_reason(body), provider)
    builder = ReplyBuilder()
    list(collect(builder, body, names or ToolNames((), letter_first=True)))
    return builder.reply(to_usage(body.get("usageMetadata")), body.get("modelVersion") or fallback_model, stop, limit,
                         provider)


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
        names = ToolNames((t.name for t in tools), letter_first=True)
        text_only = None if takes_images(self.name, self.model, self.settings) else self.model
        body = generate_body(system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens, names=names, text_only=text_only,
                             signatures="gemini-3" in self.model)
        return WireRequest(url, {"x-goog-api-key": self.api_key}, body, {"alt": "sse"} if stream else {}, names)

    def parse(self, body: dict[str, Any], wire: WireRequest) -> ProviderReply:
        return from_response(body, self.model, wire.names, self.settings.max_tokens, self.name)

    def parse_stream(self, lines: Iterator[str], wire: WireRequest) -> Iterator[StreamEvent]:
        """Each SSE event is a whole GenerateContentResponse; the last usage and finishReason count."""
        builder, usage, model, reason, last = ReplyBuilder(), Usage(), self.model, None, {}
        for _event, data in sse_events(lines):
            chunk = json.loads(data)
            if chunk.get("error"):
                raise self.classify(int(chunk["error"].get("code") or 500), data, {})
            usage = to_usage(chunk["usageMetadata"]) if chunk.get("usageMetadata") else usage
            model = chunk.get("modelVersion") or model
            reason, last = finish_reason(chunk) or reason, chunk
            yield from collect(builder, chunk, wire.names)
        stop = stop_reason(last, reason, self.name)
        yield builder.reply(usage, model, stop, self.settings.max_tokens, self.name)

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        """A 429's wait comes from ``RetryInfo`` in the body; a per-day quota is QUOTA (not retried)."""
        return classify_http(self.name, status, text, headers, auth_markers=AUTH_MARKERS, rate_markers=RATE_MARKERS,
                             retry_after=failures.google_retry_delay(text),
                             quota=status == 429 and failures.google_daily_quota(text))
