"""Fakes of the OpenAI-compatible hosts that are stricter than OpenAI, each refusing what it refuses.

- Mistral: a strict schema (any parameter or message field it does not know
  is a 422 ``extra_forbidden``: ``stream_options`` among them), tool call ids
  of exactly 9 letters or digits, no user message right after a tool message,
  and the last message a user's or a tool's. Its ids are 9 characters too.
- DeepSeek: text-only content (an ``image_url`` part does not deserialize),
  and the ``reasoning_content`` of a turn that called tools must come back
  with it on every later request.
- Groq: unknown message properties refused (``property 'x' is unsupported``),
  a system message's content must be a string, and content parts only for
  vision models.

``compatible_fake(name)`` gives the right fake for a named host.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.core import Fail, Recorded, Reply
from tests.fakes.openai import CompatibleFake, image_parts

MISTRAL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")
MISTRAL_FIELDS = {"model", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "messages",
                  "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n",
                  "prediction", "parallel_tool_calls", "prompt_mode", "safe_prompt"}
MISTRAL_MESSAGE_FIELDS = {"system": {"role", "content"}, "user": {"role", "content"},
                          "assistant": {"role", "content", "tool_calls", "prefix"},
                          "tool": {"role", "content", "tool_call_id", "name"}}
GROQ_MESSAGE_FIELDS = {"system": {"role", "content", "name"}, "user": {"role", "content", "name"},
                       "assistant": {"role", "content", "tool_calls", "name", "reasoning"},
                       "tool": {"role", "content", "tool_call_id", "name"}}


class MistralFake(CompatibleFake):
    always_stream_usage = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__("mistral", "MISTRAL", "/v1/chat/completions", *args, **kwargs)
        self.default_model = "mistral-large-latest"
        self.allowed_extras = frozenset({"prefix", "prompt_mode", "safe_prompt", "random_seed"})

    def validate(self, request: Recorded) -> list[str]:
        body = request.body
        extra = [f"extra_forbidden: body.{key}" for key in body if key not in MISTRAL_FIELDS]
        for n, message in enumerate(body.get("messages") or []):
            allowed = MISTRAL_MESSAGE_FIELDS.get(message.get("role"), set())
            extra += [f"extra_forbidden: body.messages.{n}.{key}" for key in message if key not in allowed]
        if extra:
            return extra
        return self._ids(body) + self._order(body) + super().validate(request)

    def _ids(self, body: dict[str, Any]) -> list[str]:
        ids = [call.get("id") for m in body.get("messages") or [] for call in m.get("tool_calls") or []]
        ids += [m.get("tool_call_id") for m in body.get("messages") or [] if m.get("role") == "tool"]
        return [f"Tool call id was {i} but must be a-z, A-Z, 0-9, with a length of 9." for i in ids
                if not MISTRAL_ID.match(str(i))]

    def _order(self, body: dict[str, Any]) -> list[str]:
        roles = [m.get("role") for m in body.get("messages") or []]
        problems = [f"Unexpected role '{b}' after role '{a}'" for a, b in zip(roles, roles[1:])
                    if (a, b) in (("tool", "user"), ("user", "tool"), ("system", "tool"))]
        if roles and roles[-1] not in ("user", "tool"):
            problems.append(f"Expected last role User or Tool (or Assistant with prefix True) for serving "
                            f"but got {roles[-1]}")
        return problems

    def violation_status(self, problems: list[str]) -> int:
        return 422 if any(p.startswith("extra_forbidden") for p in problems) else 400

    def _message(self, reply: Reply) -> dict[str, Any]:
        message = super()._message(reply)
        message.pop("refusal", None)
        for n, call in enumerate(message.get("tool_calls") or []):
            call["id"] = call["id"] if MISTRAL_ID.match(call["id"]) else f"Mcall{n:04d}"
        return message

    def error_body(self, fail: Fail) -> dict[str, Any]:
        if fail.status == 422:
            detail = [{"type": "extra_forbidden", "loc": ["body", *p.split("body.", 1)[-1].split(".")],
                       "msg": "Extra inputs are not permitted"}
                      for p in fail.message.split("; ") if "extra_forbidden" in p]
            return {"object": "error", "message": {"detail": detail}, "type": "invalid_request_error",
                    "param": None, "code": None}
        kind = "invalid_request_message_order" if "Unexpected role" in fail.message else "invalid_request_error"
        return {"object": "error", "message": fail.message, "type": kind, "param": None, "code": None}


class DeepSeekFake(CompatibleFake):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__("deepseek", "DEEPSEEK", "/v1/chat/completions", *args, **kwargs)
        self.default_model = "deepseek-reasoner"
        self.allowed_extras = frozenset({"reasoning_content", "thinking"})
        self.reasoning_of: dict[str, str] = {}  # tool call id -> the reasoning_content answered with it

    def validate(self, request: Recorded) -> list[str]:
        messages = request.body.get("messages") or []
        problems = [f"Failed to deserialize the JSON body into the target type: messages[{n}]: unknown variant "
                    "`image_url`, expected `text`" for n, m in enumerate(messages) if image_parts([m])]
        for n, message in enumerate(messages):
            for call in message.get("tool_calls") or []:
                issued = self.reasoning_of.get(call.get("id"))
                if issued is not None and message.get("reasoning_content") != issued:
                    problems.append(f"messages[{n}]: the reasoning_content of an assistant message with tool "
                                    "calls must be passed back to the API")
        return problems + super().validate(request)

    def _message(self, reply: Reply) -> dict[str, Any]:
        message = super()._message(reply)
        for call in message.get("tool_calls") or []:
            if reply.reasoning:
                self.reasoning_of[call["id"]] = reply.reasoning
        return message

    def render_stream(self, reply: Reply, request: Recorded):
        self._message(reply)  # remember the reasoning of streamed calls too
        return super().render_stream(reply, request)


class GroqFake(CompatibleFake):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__("groq", "GROQ", "/openai/v1/chat/completions", *args, **kwargs)
        self.default_model = "llama-3.3-70b-versatile"

    def validate(self, request: Recorded) -> list[str]:
        body, problems = request.body, []
        vision = any(name in str(body.get("model")) for name in ("llama-4", "vision"))
        for n, message in enumerate(body.get("messages") or []):
            role = message.get("role")
            rule = f"'messages.{n}' : for 'role:{role}' the following must be satisfied"
            problems += [f"{rule}[('messages.{n}' : property '{key}' is unsupported)]"
                         for key in message if key not in GROQ_MESSAGE_FIELDS.get(role, set())]
            if not isinstance(message.get("content"), str) and (role == "system" or (role == "user" and not vision)):
                problems.append(f"{rule}[('messages.{n}.content' : value must be a string)]")
        return problems or super().validate(request)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        return {"error": {"message": fail.message, "type": "invalid_request_error"}}


HOSTS = {"mistral": MistralFake, "deepseek": DeepSeekFake, "groq": GroqFake}


def compatible_fake(name: str, *args: Any, **kwargs: Any) -> CompatibleFake:
    """The fake of a named OpenAI-compatible host (its own rules where it has them)."""
    if name in HOSTS:
        return HOSTS[name](*args, **kwargs)
    prefix, path = {"openrouter": ("OPENROUTER", "/api/v1/chat/completions"), "xai": ("XAI", "/v1/chat/completions"),
                    "openai_compatible": ("OPENAI_COMPATIBLE", "/v1/chat/completions")}[name]
    return CompatibleFake(name, prefix, path, *args, key_required=name != "openai_compatible", **kwargs)
