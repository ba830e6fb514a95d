"""A fake Ollama server: ``POST /api/chat``, JSON or NDJSON.

Checks what Ollama rejects or silently mangles: content that is not a
string, unknown roles, ``tool_calls[].function.arguments`` that is not a JSON
object, images that are not base64 strings, tool messages that do not
follow an assistant message with as many tool calls, and malformed tools.

Like Ollama, it does not refuse a prompt longer than its context
(``options.num_ctx``, else its default of 4096 tokens): it drops the start of
the prompt and says so only by a ``prompt_eval_count`` of the context's size.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_object, chunks, with_drop
from tests.fakes.openai import check_tools

ROLES = ("system", "user", "assistant", "tool")
DEFAULT_NUM_CTX = 4096
CODES = {"model_not_found": (404, 'model "{model}" not found, try pulling it first')}


def _message_problems(n: int, message: Any) -> list[str]:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        return [f"messages[{n}]: role must be one of {ROLES}"]
    problems = []
    if not isinstance(message.get("content", ""), str):
        problems.append(f"messages[{n}]: json: cannot unmarshal array into Go struct field Message.content "
                        "of type string")
    if not all(isinstance(i, str) for i in message.get("images", [])):
        problems.append(f"messages[{n}]: images must be base64 strings")
    for call in message.get("tool_calls", []):
        if not isinstance((call.get("function") or {}).get("arguments"), dict):
            problems.append(f"messages[{n}]: tool_calls[].function.arguments must be a JSON object")
    return problems


def check_messages(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["messages must be a non-empty array"]
    problems, expected_results = [], 0
    for n, message in enumerate(messages):
        problems += _message_problems(n, message)
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool":
            if expected_results == 0:
                problems.append(f"messages[{n}]: a tool message must answer a tool call of the assistant before it")
            expected_results -= 1
            continue
        if expected_results > 0:
            problems.append(f"messages[{n}]: {expected_results} tool call(s) were not answered")
        expected_results = len(message.get("tool_calls", [])) if role == "assistant" else 0
    return problems


class OllamaFake(ScriptedAPI):
    provider = "ollama"
    default_model = "qwen2.5"
    stream_content_type = "application/x-ndjson"

    def env(self) -> dict[str, str]:
        return {"OLLAMA_HOST": self.base_url.removeprefix("http://")}  # bare host:port, as users set it

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/api/chat"

    def authorized(self, request: Recorded) -> bool:
        return True

    def wants_stream(self, request: Recorded) -> bool:
        return request.body.get("stream", True) is not False  # Ollama streams unless told not to

    def validate(self, request: Recorded) -> list[str]:
        body = request.body
        problems = [] if isinstance(body.get("model"), str) and body["model"] else ["model is required"]
        problems += check_messages(body.get("messages"))
        if "tools" in body:
            problems += check_tools(body["tools"])
        if not isinstance(body.get("options", {}), dict) or not isinstance(
                (body.get("options") or {}).get("num_ctx", 1), int):
            problems.append("options.num_ctx must be an integer")
        return problems

    # --- answers ----------------------------------------------------------------------
    def _message(self, content: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
        return {"role": "assistant", "content": content, **({"tool_calls": calls} if calls else {})}

    @staticmethod
    def prompt_tokens(body: dict[str, Any]) -> int:
        """The fake's own count of a prompt: its text at four characters a token."""
        text = "".join(str(m.get("content") or "") + json.dumps(m.get("tool_calls") or []) for m in body["messages"])
        return (len(text) + len(json.dumps(body.get("tools") or []))) // 4

    def _final(self, reply: Reply, request: Recorded, message: dict[str, Any]) -> dict[str, Any]:
        num_ctx = (request.body.get("options") or {}).get("num_ctx") or DEFAULT_NUM_CTX
        counted = min(max(reply.usage[0], self.prompt_tokens(request.body)), num_ctx)  # past num_ctx: cut
        return {"model": reply.model or request.body["model"], "created_at": "2025-06-01T12:00:00.000000Z",
                "message": message, "done_reason": reply.finish or "stop", "done": True, "total_duration": 1_200_000,
                "load_duration": 100_000, "prompt_eval_count": counted, "prompt_eval_duration": 300_000,
                "eval_count": reply.usage[1], "eval_duration": 800_000}

    def _calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [{"function": {"name": c.name, "arguments": call_arguments_object(c)}} for c in reply.tool_calls]

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        return self._final(reply, request, self._message(reply.text, self._calls(reply)))

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        model = reply.model or request.body["model"]
        for piece in chunks(reply.text, reply.chunk_size) if reply.text else []:
            yield self._line({"model": model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "message": self._message(piece, []), "done": False})
        if reply.tool_calls:
            yield self._line({"model": model, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "message": self._message("", self._calls(reply)), "done": False})
        yield self._line(self._final(reply, request, self._message("", [])))

    @staticmethod
    def _line(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj).encode() + b"\n"

    def render_stream(self, reply: Reply, request: Recorded) -> Iterator[bytes | None]:
        return with_drop(self._frames(reply, request), reply)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        _status, message = CODES.get(fail.code or "", (fail.status, fail.message))
        return {"error": message.format(model=self.default_model)}

    def stream_error(self, fail: Fail) -> bytes:
        return self._line(self.error_body(fail))
