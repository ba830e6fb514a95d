"""A fake OpenAI chat-completions API (also the base of the Azure and compatible-host fakes).

Every request is validated against the official ``openai`` SDK's request
types (``CompletionCreateParams*``, unknown parameters refused like the real
API) and answers are built through its ``ChatCompletion`` / ``ChatCompletionChunk``
models. On top, what the types cannot say and the API refuses: a wrong bearer
key (401), tool messages that do not answer the preceding assistant's
``tool_calls`` ids, calls left unanswered, arguments that are not a JSON
string, tool names outside ``^[a-zA-Z0-9_-]{1,64}$``, ``temperature`` or
``max_tokens`` for reasoning models (o-series, GPT-5), and images for the
models that take none.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterator

from tests.fakes import sdk
from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_text, chunks, sse, with_drop

ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
REASONING = re.compile(r"^(o\d|gpt-5)")
TEXT_ONLY = ("o1-mini", "o3-mini", "gpt-3.5-turbo")
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
            continue
        if pending:
            problems.append(f"messages[{n}]: tool_call ids {pending} were not answered by tool messages")
            pending = []
        if role == "assistant" and message.get("tool_calls"):
            calls, call_problems = _check_tool_calls(n, message["tool_calls"])
            problems.extend(call_problems)
            pending = calls
    if pending:
        problems.append(f"tool_call ids {pending} were not answered by tool messages")
    return problems


def _check_tool_calls(n: int, calls: Any) -> tuple[list[str], list[str]]:
    ids, problems = [], []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") or {}
        if not isinstance(function.get("arguments"), str):
            problems.append(f"messages[{n}].tool_calls[].function.arguments must be a JSON-encoded string")
        else:
            try:
                json.loads(function["arguments"])
            except ValueError:
                problems.append(f"messages[{n}].tool_calls[].function.arguments is not valid JSON")
        if not TOOL_NAME.match(str(function.get("name"))):
            problems.append(f"messages[{n}].tool_calls[].function.name {function.get('name')!r} is invalid")
        ids.append(call.get("id"))
    return ids, problems


def check_tools(tools: Any) -> list[str]:
    problems = []
    for tool in tools if isinstance(tools, list) else [None]:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            problems.append("tools[] must be {'type': 'function', 'function': {...}}")
        elif not TOOL_NAME.match(str(function.get("name"))):
            problems.append(f"Invalid 'tools[].function.name': string does not match pattern. Expected a string "
                            f"that matches the pattern '{TOOL_NAME.pattern}' (got {function.get('name')!r})")
        elif not isinstance(function.get("parameters", {}), dict):
            problems.append("tools[].function.parameters must be a JSON schema object")
    return problems


def image_parts(messages: Any) -> int:
    return sum(1 for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
               for part in m["content"] if isinstance(part, dict) and part.get("type") == "image_url")


class OpenAIFake(ScriptedAPI):
    provider = "openai"
    default_model = "gpt-4o"
    path = "/v1/chat/completions"
    allowed_extras: frozenset[str] = frozenset()  # parameters a compatible host adds to OpenAI's
    always_stream_usage = False                   # the usage chunk comes unasked (Mistral)

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
        kind = "openai-stream" if body.get("stream") else "openai"
        problems = sdk.typed_dict_problems(kind, body, allow=self.allowed_extras)
        problems += check_messages(body.get("messages"))
        if "tools" in body:
            problems += check_tools(body["tools"])
        if "stream_options" in body and not body.get("stream"):
            problems.append("stream_options is only allowed when stream is true")
        return problems + self.model_rules(str(body.get("model")), body)

    def model_rules(self, model: str, body: dict[str, Any]) -> list[str]:
        """What a model refuses: sampling parameters on reasoning models, images on text-only ones."""
        problems = []
        if REASONING.match(model) and "-chat" not in model:
            problems += [f"Unsupported parameter: '{key}' is not supported with this model."
                         + (" Use 'max_completion_tokens' instead." if key == "max_tokens" else "")
                         for key in ("temperature", "max_tokens") if key in body]
        if any(model.startswith(name) for name in TEXT_ONLY) and image_parts(body.get("messages") or []):
            problems.append("Invalid content type. image_url is only supported by certain models.")
        return problems

    # --- answers ----------------------------------------------------------------------
    def _model(self, reply: Reply, request: Recorded) -> str:
        return reply.model or request.body.get("model") or self.default_model

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage), **reply.usage_details}

    def _finish(self, reply: Reply) -> str:
        return reply.finish or ("tool_calls" if reply.tool_calls else "stop")

    def _message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [{"id": c.id or f"call_{n}", "type": "function",
                                      "function": {"name": c.name, "arguments": call_arguments_text(c)}}
                                     for n, c in enumerate(reply.tool_calls)]
        return message

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        from openai.types.chat import ChatCompletion
        return sdk.dump(ChatCompletion, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": self._model(reply, request), "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": self._message(reply), "logprobs": None,
                         "finish_reason": self._finish(reply)}],
            "usage": self._usage(reply)})

    def _chunk(self, reply: Reply, request: Recorded, delta: dict[str, Any] | None, finish: str | None = None,
               usage: dict[str, Any] | None = None) -> bytes:
        from openai.types.chat import ChatCompletionChunk
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": self._model(reply, request), "choices": choices}
        if usage is not None:
            chunk["usage"] = usage
        return sse(sdk.dump(ChatCompletionChunk, chunk))

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        yield self._chunk(reply, request, {"role": "assistant", "content": ""})
        for piece in chunks(reply.reasoning, reply.chunk_size) if reply.reasoning else []:
            yield self._chunk(reply, request, {"reasoning_content": piece})
        for piece in chunks(reply.text, reply.chunk_size) if reply.text else []:
            yield self._chunk(reply, request, {"content": piece})
        for n, call in enumerate(reply.tool_calls):
            index = 0 if reply.index_zero else n
            head = {"index": index, "id": call.id or f"call_{n}", "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            yield self._chunk(reply, request, {"tool_calls": [head]})
            for piece in chunks(call_arguments_text(call), reply.chunk_size):
                yield self._chunk(reply, request, {"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield self._chunk(reply, request, {}, self._finish(reply))
        if (request.body.get("stream_options") or {}).get("include_usage") or self.always_stream_usage:
            yield self._chunk(reply, request, None, usage=self._usage(reply))
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
    """Azure OpenAI: the deployment is in the path, the key in ``api-key``, ``api-version`` is required.

    ``reasoning=True`` makes the deployment a reasoning model (whatever its name):
    it refuses api-versions before 2024-12-01-preview and sampling parameters.
    """

    provider = "azure_openai"
    default_model = ""

    def __init__(self, *args: Any, deployment: str = "gpt4o-prod", reasoning: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deployment, self.reasoning = deployment, reasoning

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/openai/deployments/{self.deployment}/chat/completions"

    def env(self) -> dict[str, str]:
        return {"AZURE_OPENAI_ENDPOINT": self.base_url, "AZURE_OPENAI_DEPLOYMENT_NAME": self.deployment,
                "AZURE_OPENAI_API_KEY": self.api_key}

    def authorized(self, request: Recorded) -> bool:
        return request.headers.get("api-key") == self.api_key

    def validate(self, request: Recorded) -> list[str]:
        version = request.query.get("api-version")
        problems = [] if version else ["the api-version query parameter is required"]
        if self.reasoning and version and version[:10] < "2024-12-01":
            problems.append(f"Model {self.deployment} is enabled only for api versions 2024-12-01-preview and later")
        return problems + super().validate(request)

    def model_rules(self, model: str, body: dict[str, Any]) -> list[str]:
        return super().model_rules("o3" if self.reasoning else "gpt-4o", body)

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

    def model_rules(self, model: str, body: dict[str, Any]) -> list[str]:
        return []  # a compatible host's model names are its own
