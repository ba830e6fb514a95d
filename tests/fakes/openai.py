"""A fake OpenAI chat-completions API (also the base of the Azure and compatible-host fakes).

Checks what the real API rejects: a missing/wrong bearer key (answered 401
like the real API), unknown roles, tool messages that do not answer the
preceding assistant's ``tool_calls`` ids, calls left unanswered, arguments
that are not a JSON *string*, malformed tool declarations, and for o-series
models ``temperature`` / ``max_tokens``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterator

from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_text, chunks, sse, with_drop

ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
               404: "invalid_request_error", 429: "requests", 500: "server_error", 503: "server_error"}
ERROR_CODES = {"auth": ("invalid_api_key", "Incorrect API key provided: sk-te****. You can find your API key "
                        "at https://platform.openai.com/account/api-keys."),
               "context_length_exceeded": ("context_length_exceeded", "This model's maximum context length is "
                                           "128000 tokens. However, your messages resulted in 130512 tokens. "
                                           "Please reduce the length of the messages."),
               "insufficient_quota": ("insufficient_quota", "You exceeded your current quota, please check your "
                                      "plan and billing details."),
               "rate_limit_exceeded": ("rate_limit_exceeded", "Rate limit reached for gpt-4o on tokens per min "
                                       "(TPM): Limit 30000, Used 30000. Please try again in 20ms.")}


def check_messages(messages: Any) -> list[str]:
    """Every OpenAI-style rule about the messages array, as a list of violations."""
    if not isinstance(messages, list) or not messages:
        return ["messages must be a non-empty array"]
    problems: list[str] = []
    pending: list[str] = []  # tool_call ids of the last assistant message not yet answered
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            problems.append(f"messages[{n}].role {role!r} is not one of {ROLES}")
            continue
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                problems.append(f"messages[{n}]: tool message with tool_call_id {call_id!r} does not answer "
                                "a tool_call of the preceding assistant message")
            else:
                pending.remove(call_id)
            if not isinstance(message.get("content"), (str, list)):
                problems.append(f"messages[{n}].content of a tool message must be a string")
            continue
        if pending:
            problems.append(f"messages[{n}]: tool_call ids {pending} were not answered by tool messages")
            pending = []
        problems.extend(_check_content(n, message))
        if role == "assistant" and message.get("tool_calls"):
            calls, call_problems = _check_tool_calls(n, message["tool_calls"])
            problems.extend(call_problems)
            pending = calls
    if pending:
        problems.append(f"tool_call ids {pending} were not answered by tool messages")
    return problems


def _check_content(n: int, message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if content is None and message["role"] == "assistant" and message.get("tool_calls"):
        return []
    if isinstance(content, str):
        return []
    if not isinstance(content, list):
        return [f"messages[{n}].content must be a string or an array of parts"]
    problems = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind == "image_url" and message["role"] == "user" and \
                str(part.get("image_url", {}).get("url", "")).startswith(("data:", "http")):
            continue
        problems.append(f"messages[{n}].content has an invalid part {part!r:.80}")
    return problems


def _check_tool_calls(n: int, calls: Any) -> tuple[list[str], list[str]]:
    ids, problems = [], []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") or {}
        if call.get("type") != "function" or not isinstance(call.get("id"), str):
            problems.append(f"messages[{n}].tool_calls entries need an id and type 'function'")
        if not isinstance(function.get("arguments"), str):
            problems.append(f"messages[{n}].tool_calls[].function.arguments must be a JSON-encoded string")
        else:
            try:
                json.loads(function["arguments"])
            except ValueError:
                problems.append(f"messages[{n}].tool_calls[].function.arguments is not valid JSON")
        ids.append(call.get("id"))
    return ids, problems


def check_tools(tools: Any) -> list[str]:
    problems = []
    for tool in tools if isinstance(tools, list) else [None]:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            problems.append("tools[] must be {'type': 'function', 'function': {...}}")
        elif not TOOL_NAME.match(str(function.get("name"))):
            problems.append(f"tool name {function.get('name')!r} must match {TOOL_NAME.pattern}")
        elif not isinstance(function.get("parameters", {}), dict):
            problems.append("tools[].function.parameters must be a JSON schema object")
    return problems


class OpenAIFake(ScriptedAPI):
    provider = "openai"
    default_model = "gpt-4o"
    path = "/v1/chat/completions"

    def env(self) -> dict[str, str]:
        return {"OPENAI_API_KEY": self.api_key, "OPENAI_HOST": self.base_url}

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path == self.path

    def authorized(self, request: Recorded) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def wants_stream(self, request: Recorded) -> bool:
        return bool(request.body.get("stream"))

    def validate(self, request: Recorded) -> list[str]:
        body = request.body
        problems = [] if isinstance(body.get("model"), str) else ["model is required"]
        problems += check_messages(body.get("messages"))
        if "tools" in body:
            problems += check_tools(body["tools"])
        if "stream_options" in body and not body.get("stream"):
            problems.append("stream_options is only allowed when stream is true")
        if re.match(r"^o\d", str(body.get("model"))):
            problems += [f"{key} is not supported with this model" for key in ("temperature", "max_tokens")
                         if key in body]
        return problems

    # --- answers ----------------------------------------------------------------------
    def _model(self, reply: Reply, request: Recorded) -> str:
        return reply.model or request.body.get("model") or self.default_model

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage)}

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [{"id": c.id or f"call_{n}", "type": "function",
                                      "function": {"name": c.name, "arguments": call_arguments_text(c)}}
                                     for n, c in enumerate(reply.tool_calls)]
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": self._model(reply, request), "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
                "usage": self._usage(reply)}

    def _chunk(self, reply: Reply, request: Recorded, delta: dict[str, Any] | None,
               finish: str | None = None) -> bytes:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": self._model(reply, request), "choices": choices})

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        yield self._chunk(reply, request, {"role": "assistant", "content": ""})
        for piece in chunks(reply.text, reply.chunk_size) if reply.text else []:
            yield self._chunk(reply, request, {"content": piece})
        for n, call in enumerate(reply.tool_calls):
            head = {"index": n, "id": call.id or f"call_{n}", "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            yield self._chunk(reply, request, {"tool_calls": [head]})
            for piece in chunks(call_arguments_text(call), reply.chunk_size):
                yield self._chunk(reply, request, {"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
        yield self._chunk(reply, request, {}, "tool_calls" if reply.tool_calls else "stop")
        if (request.body.get("stream_options") or {}).get("include_usage"):
            usage_chunk = json.loads(self._chunk(reply, request, None)[len(b"data: "):])
            yield sse({**usage_chunk, "usage": self._usage(reply)})
        yield sse("[DONE]")

    def render_stream(self, reply: Reply, request: Recorded) -> Iterator[bytes | None]:
        return with_drop(self._frames(reply, request), reply)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        code, message = ERROR_CODES.get(fail.code or "", (fail.code, fail.message))
        if fail.code is None and fail.status == 429:
            code, message = ERROR_CODES["rate_limit_exceeded"]
        return {"error": {"message": message, "type": ERROR_TYPES.get(fail.status, "invalid_request_error"),
                          "param": None, "code": code}}

    def stream_error(self, fail: Fail) -> bytes:
        return sse(self.error_body(fail))


class AzureOpenAIFake(OpenAIFake):
    """Azure OpenAI: the deployment is in the path, the key in ``api-key``, ``api-version`` is required."""

    provider = "azure_openai"
    default_model = ""
    deployment = "gpt4o-prod"

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/openai/deployments/{self.deployment}/chat/completions"

    def env(self) -> dict[str, str]:
        return {"AZURE_OPENAI_ENDPOINT": self.base_url, "AZURE_OPENAI_DEPLOYMENT_NAME": self.deployment,
                "AZURE_OPENAI_API_KEY": self.api_key}

    def authorized(self, request: Recorded) -> bool:
        return request.headers.get("api-key") == self.api_key

    def validate(self, request: Recorded) -> list[str]:
        problems = [] if request.query.get("api-version") else ["the api-version query parameter is required"]
        return problems + super().validate(request)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        if fail.code == "auth":
            return {"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong "
                                                        "API endpoint."}}
        return super().error_body(fail)


class CompatibleFake(OpenAIFake):
    """A named OpenAI-compatible host (``<PREFIX>_API_KEY`` / ``_HOST``) at its own base path."""

    def __init__(self, provider: str, prefix: str, path: str, *args: Any, key_required: bool = True,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.provider, self.prefix, self.path, self.key_required = provider, prefix, path, key_required
        self.default_model = "test-model"

    def env(self) -> dict[str, str]:
        env = {f"{self.prefix}_HOST": self.base_url}
        if self.key_required:
            env[f"{self.prefix}_API_KEY"] = self.api_key
        return env

    def authorized(self, request: Recorded) -> bool:
        return super().authorized(request) if self.key_required else "authorization" not in request.headers
