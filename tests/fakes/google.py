"""A fake Gemini API: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

Every request's parts are validated against the official ``google-genai``
SDK's models (``Content``, ``Tool``, ``GenerationConfig``: unknown fields are
refused, as the API's ``Invalid JSON payload received. Unknown name``; a type
array or a number in a string enum fails as it does) and answers are built
through its ``GenerateContentResponse``. On top: a wrong key (400
API_KEY_INVALID like the real API), roles other than ``user``/``model``, parts
with no or several data fields, function calls not answered by as many
``functionResponse`` parts in the next user turn, schema keys the Gemini API
(not Vertex) refuses, function names that do not start with a letter or
``_``, and for Gemini 3 models a function call of the current turn sent back
without the ``thoughtSignature`` it was given (the API's 400).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Iterator

from tests.fakes import sdk
from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_object, chunks, sse, with_drop

PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")
PART_FIELDS = ("text", "inlineData", "functionCall", "functionResponse", "fileData")
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
BAD_SCHEMA_KEYS = ("additionalProperties", "$schema", "$defs", "$ref", "exclusiveMinimum", "exclusiveMaximum",
                   "propertyNames", "oneOf", "allOf", "const")
PLACEHOLDER_SIGNATURES = ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go")
STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
          500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
CODES = {"auth": (400, "API key not valid. Please pass a valid API key."),
         "context_length_exceeded": (400, "The input token count (1250000) exceeds the maximum number of tokens "
                                          "allowed (1048576).")}


def _part_problems(n: int, role: str, parts: Any) -> list[str]:
    if not isinstance(parts, list) or not parts:
        return [f"contents[{n}].parts must not be empty"]
    problems = []
    for part in parts:
        fields = [f for f in PART_FIELDS if isinstance(part, dict) and f in part]
        if len(fields) != 1:
            problems.append(f"contents[{n}]: a part must hold exactly one of {PART_FIELDS}, got {fields}")
        elif fields[0] == "functionCall" and (role != "model" or not isinstance(part["functionCall"].get("args", {}),
                                                                                dict)):
            problems.append(f"contents[{n}]: functionCall belongs to the model and its args must be an object")
        elif fields[0] == "functionResponse" and (role != "user" or not isinstance(
                part["functionResponse"].get("response"), dict)):
            problems.append(f"contents[{n}]: functionResponse belongs to the user and its response must be an object")
    return problems


def _names(content: dict[str, Any] | None, field: str) -> list[str]:
    parts = (content or {}).get("parts") or []
    return sorted(p[field]["name"] for p in parts if isinstance(p, dict) and field in p)


def check_contents(contents: Any) -> list[str]:
    if not isinstance(contents, list) or not contents:
        return ["contents must be a non-empty array"]
    problems = []
    for n, content in enumerate(contents):
        role = content.get("role") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            problems.append(f"contents[{n}].role must be 'user' or 'model', got {role!r}")
            continue
        problems += _part_problems(n, role, content.get("parts"))
        calls = _names(content, "functionCall")
        following = contents[n + 1] if n + 1 < len(contents) else None
        if calls and _names(following, "functionResponse") != calls:
            problems.append(f"contents[{n}]: function calls {calls} must be answered by functionResponse parts "
                            f"in the next user turn, got {_names(following, 'functionResponse')}")
    return problems


def schema_problems(schema: Any, where: str) -> list[str]:
    if isinstance(schema, list):
        return [p for item in schema for p in schema_problems(item, where)]
    if not isinstance(schema, dict):
        return []
    problems = [f'{where}: Invalid JSON payload received. Unknown name "{k}"' for k in BAD_SCHEMA_KEYS if k in schema]
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            problems += [p for prop in value.values() for p in schema_problems(prop, where)]
        elif isinstance(value, (dict, list)) and key != "enum":
            problems += schema_problems(value, where)
    return problems


def current_turn(contents: list[Any]) -> list[Any]:
    """The contents since the last user message with text: the tool loop still going on."""
    for n in range(len(contents) - 1, -1, -1):
        content = contents[n]
        if isinstance(content, dict) and content.get("role") == "user" and any(
                isinstance(p, dict) and "text" in p for p in content.get("parts") or []):
            return contents[n + 1:]
    return contents


def quota_body(retry_delay: str | None = None, quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel",
               message: str = "You exceeded your current quota, please check your plan and billing details.") -> dict:
    """A real 429 RESOURCE_EXHAUSTED body: QuotaFailure (which quota), Help, RetryInfo (how long to wait)."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                         "quotaId": quota_id, "quotaDimensions": {"location": "global", "model": "gemini-2.5-pro"},
                         "quotaValue": "250"}]},
        {"@type": "type.googleapis.com/google.rpc.Help",
         "links": [{"description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}}


class GoogleFake(ScriptedAPI):
    provider = "google"
    default_model = "gemini-2.5-pro"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.signatures: set[str] = set()  # thoughtSignatures this fake gave out

    def env(self) -> dict[str, str]:
        return {"GOOGLE_API_KEY": self.api_key, "GOOGLE_HOST": self.base_url}

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and PATH.match(path) is not None

    def authorized(self, request: Recorded) -> bool:
        return self.api_key in (request.headers.get("x-goog-api-key"), request.query.get("key"))

    def auth_failure(self) -> Fail:
        return Fail(400, code="auth")

    def wants_stream(self, request: Recorded) -> bool:
        return PATH.match(request.path).group(2) == "streamGenerateContent"

    def _model_name(self, request: Recorded) -> str:
        return PATH.match(request.path).group(1)

    def validate(self, request: Recorded) -> list[str]:
        from google.genai import types
        body = request.body
        problems = [f"Invalid JSON payload received. Unknown name \"{k}\": Cannot find field." for k in body
                    if k not in ("contents", "systemInstruction", "tools", "generationConfig", "toolConfig",
                                 "safetySettings", "cachedContent")]
        problems += check_contents(body.get("contents"))
        for n, content in enumerate(body.get("contents") or []):
            problems += sdk.model_problems(types.Content, content, f"contents[{n}]")
        if self.wants_stream(request) and request.query.get("alt") != "sse":
            problems.append("this fake streams only with alt=sse")
        system = body.get("systemInstruction")
        if system is not None:
            problems += sdk.model_problems(types.Content, system, "systemInstruction")
        if "generationConfig" in body:
            problems += sdk.model_problems(types.GenerationConfig, body["generationConfig"], "generationConfig")
        for n, tool in enumerate(body.get("tools", [])):
            problems += sdk.model_problems(types.Tool, tool, f"tools[{n}]")
            for declaration in tool.get("functionDeclarations", []):
                if not FUNCTION_NAME.match(str(declaration.get("name"))):
                    problems.append(f"function name {declaration.get('name')!r} is invalid: it must start with "
                                    "a letter or an underscore")
                problems += schema_problems(declaration.get("parameters"), f"function {declaration.get('name')}")
        if self._model_name(request).startswith("gemini-3"):
            problems += self._signature_problems(body.get("contents") or [])
        return problems

    def _signature_problems(self, contents: list[Any]) -> list[str]:
        problems = []
        for n, content in enumerate(current_turn(contents)):
            calls = [p for p in content.get("parts") or [] if isinstance(p, dict) and "functionCall" in p]
            if content.get("role") == "model" and calls:
                signature = calls[0].get("thoughtSignature")
                if signature not in self.signatures and signature not in PLACEHOLDER_SIGNATURES:
                    problems.append(f"Function call is missing a thought_signature in functionCall parts. This is "
                                    f"required for tools to work correctly, and missing thought_signature may lead "
                                    f"to degraded model performance. Additional data, function call "
                                    f"`default_api:{calls[0]['functionCall'].get('name')}` , position {n + 1}.")
        return problems

    # --- answers ----------------------------------------------------------------------
    def _response(self, parts: list[dict[str, Any]], usage: dict[str, int] | None, model: str,
                  finish: str | None, blocked: str | None = None) -> dict[str, Any]:
        from google.genai import types
        answer: dict[str, Any] = {"modelVersion": model, "responseId": "fake-response"}
        if blocked:
            answer["promptFeedback"] = {"blockReason": blocked}
        else:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            answer["candidates"] = [candidate]
        if usage:
            answer["usageMetadata"] = usage
        return sdk.dump(types.GenerateContentResponse, answer, by_alias=True)

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {"promptTokenCount": reply.usage[0], "candidatesTokenCount": reply.usage[1],
                "totalTokenCount": sum(reply.usage) + reply.usage_details.get("thoughtsTokenCount", 0),
                **reply.usage_details}

    def _call_parts(self, reply: Reply, model: str) -> list[dict[str, Any]]:
        parts = [{"functionCall": {"name": c.name, "args": call_arguments_object(c), **({"id": c.id} if c.id else {})}}
                 for c in reply.tool_calls]
        if parts and model.startswith("gemini-3"):  # the first call of a step carries the signature
            signature = base64.b64encode(f"signature-{len(self.signatures)}".encode()).decode()
            self.signatures.add(signature)
            parts[0]["thoughtSignature"] = signature
        return parts

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        model = reply.model or self._model_name(request)
        parts = ([{"text": reply.text}] if reply.text else []) + self._call_parts(reply, model)
        return self._response(parts, self._usage(reply), model, reply.finish or "STOP", reply.blocked)

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        model = reply.model or self._model_name(request)
        pieces = chunks(reply.text, reply.chunk_size) if reply.text else []
        for piece in pieces:
            yield sse(self._response([{"text": piece}], {"promptTokenCount": reply.usage[0]}, model, None))
        yield sse(self._response(self._call_parts(reply, model) or [{"text": ""}], self._usage(reply), model,
                                 reply.finish or "STOP", reply.blocked))

    def render_stream(self, reply: Reply, request: Recorded) -> Iterator[bytes | None]:
        return with_drop(self._frames(reply, request), reply)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        status, message = CODES.get(fail.code or "", (fail.status, fail.message))
        error: dict[str, Any] = {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}
        if fail.code == "auth":
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com"}]
        return {"error": error}

    def stream_error(self, fail: Fail) -> bytes:
        return sse(self.error_body(fail))
