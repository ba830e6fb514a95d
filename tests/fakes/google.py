"""A fake Gemini API: ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

Checks what the real API rejects: a wrong key (``x-goog-api-key`` or
``?key=``; answered 400 API_KEY_INVALID like the real API), roles other than
``user``/``model``, empty parts, parts with no or several data fields,
``functionCall.args`` that is not an object, function calls not answered by
as many ``functionResponse`` parts (same names) in the next user turn, schema
keys outside Gemini's OpenAPI subset (``additionalProperties``, ``$schema``),
and a system prompt sent as a message instead of ``systemInstruction``.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_object, chunks, sse, with_drop

PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)$")
PART_FIELDS = ("text", "inlineData", "functionCall", "functionResponse", "fileData")
FUNCTION_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$")
BAD_SCHEMA_KEYS = ("additionalProperties", "$schema", "$defs", "exclusiveMinimum", "exclusiveMaximum")
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


class GoogleFake(ScriptedAPI):
    provider = "google"
    default_model = "gemini-2.5-pro"

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

    def validate(self, request: Recorded) -> list[str]:
        body = request.body
        problems = check_contents(body.get("contents"))
        if self.wants_stream(request) and request.query.get("alt") != "sse":
            problems.append("this fake streams only with alt=sse")
        system = body.get("systemInstruction")
        if system is not None and not (isinstance(system, dict) and system.get("parts")):
            problems.append("systemInstruction must be a Content with parts")
        for tool in body.get("tools", []):
            for declaration in tool.get("functionDeclarations", []):
                if not FUNCTION_NAME.match(str(declaration.get("name"))):
                    problems.append(f"function name {declaration.get('name')!r} is invalid")
                problems += schema_problems(declaration.get("parameters"), f"function {declaration.get('name')}")
        return problems

    # --- answers ----------------------------------------------------------------------
    def _response(self, parts: list[dict[str, Any]], usage: dict[str, int] | None, model: str,
                  finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        answer = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response"}
        if usage:
            answer["usageMetadata"] = usage
        return answer

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {"promptTokenCount": reply.usage[0], "candidatesTokenCount": reply.usage[1],
                "totalTokenCount": sum(reply.usage)}

    def _call_parts(self, reply: Reply) -> list[dict[str, Any]]:
        return [{"functionCall": {"name": c.name, "args": call_arguments_object(c), **({"id": c.id} if c.id else {})}}
                for c in reply.tool_calls]

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        parts = ([{"text": reply.text}] if reply.text else []) + self._call_parts(reply)
        model = reply.model or PATH.match(request.path).group(1)
        return self._response(parts, self._usage(reply), model, "STOP")

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        model = reply.model or PATH.match(request.path).group(1)
        pieces = chunks(reply.text, reply.chunk_size) if reply.text else []
        for piece in pieces:
            yield sse(self._response([{"text": piece}], {"promptTokenCount": reply.usage[0]}, model, None))
        yield sse(self._response(self._call_parts(reply) or [{"text": ""}], self._usage(reply), model, "STOP"))

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
