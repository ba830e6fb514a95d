"""A fake Anthropic Messages API (``POST /v1/messages``).

Every request is validated against the official ``anthropic`` SDK's
``MessageCreateParams*`` (unknown fields refused, as the API does) and answers
are built through its ``Message`` and stream event models. On top, what the
types cannot say and the API refuses: a wrong ``x-api-key`` (401), a missing
``anthropic-version`` header, a first message that is not the user's, roles
that do not strictly alternate, empty text blocks, ``tool_use`` ids not
answered by ``tool_result`` blocks at the start of the next user message,
tool names outside ``^[a-zA-Z0-9_-]{1,64}$``, and more than four
``cache_control`` breakpoints.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from tests.fakes import sdk
from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, call_arguments_object, chunks, sse, with_drop

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BLOCKS = {"user": ("text", "image", "tool_result", "document"), "assistant": ("text", "tool_use", "thinking")}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}
CODES = {"context_length_exceeded": (400, "prompt is too long: 208310 tokens > 200000 maximum"),
         "auth": (401, "invalid x-api-key"),
         "overloaded": (529, "Overloaded")}
MAX_CACHE_BREAKPOINTS = 4


def cache_breakpoints(body: dict[str, Any]) -> int:
    blocks = [*(body.get("system") if isinstance(body.get("system"), list) else []), *(body.get("tools") or [])]
    blocks += [b for m in body.get("messages") or [] if isinstance(m.get("content"), list) for b in m["content"]]
    return sum(1 for b in blocks if isinstance(b, dict) and b.get("cache_control"))


def _block_problems(n: int, role: str, blocks: Any) -> list[str]:
    if isinstance(blocks, str):
        return [] if blocks else [f"messages.{n}: content must not be empty"]
    if not isinstance(blocks, list) or not blocks:
        return [f"messages.{n}: content must be a non-empty string or array"]
    problems = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCKS[role]:
            problems.append(f"messages.{n}: a {role} message cannot hold a {kind!r} block")
        elif kind == "text" and not str(block.get("text", "")).strip():
            problems.append(f"messages.{n}: text content blocks must be non-empty")
        elif kind == "tool_use" and not (isinstance(block.get("input"), dict) and block.get("id")
                                         and TOOL_NAME.match(str(block.get("name")))):
            problems.append(f"messages.{n}: tool_use needs an id, a valid name and an object input")
        elif kind == "tool_result" and not isinstance(block.get("is_error", False), bool):
            problems.append(f"messages.{n}: tool_result.is_error must be a boolean")
    return problems


def _tool_pairing(n: int, previous: dict[str, Any] | None, message: dict[str, Any]) -> list[str]:
    """tool_use ids of the previous assistant turn must be answered first thing in this user turn."""
    blocks = message["content"] if isinstance(message["content"], list) else []
    asked = [b["id"] for b in (previous or {}).get("content", []) if isinstance(previous.get("content"), list)
             and isinstance(b, dict) and b.get("type") == "tool_use"]
    results = [b.get("tool_use_id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
    problems = []
    if sorted(map(str, asked)) != sorted(map(str, results)):
        problems.append(f"messages.{n}: tool_use ids {asked} must each be answered by one tool_result; "
                        f"got {results}")
    leading = [b.get("type") for b in blocks[:len(results)]]
    if any(kind != "tool_result" for kind in leading):
        problems.append(f"messages.{n}: tool_result blocks must come first in the user message")
    return problems


def check_messages(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["messages: must be a non-empty array"]
    problems = []
    previous = None
    for n, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in BLOCKS:
            problems.append(f"messages.{n}: unexpected role {role!r} (the system prompt is a top-level field)")
            continue
        expected = "user" if n % 2 == 0 else "assistant"
        if role != expected:
            problems.append(f"messages.{n}: roles must alternate starting with user; expected {expected}")
        problems += _block_problems(n, role, message.get("content"))
        if role == "user":
            problems += _tool_pairing(n, previous, message)
        previous = message
    if previous is not None and previous.get("role") == "assistant" and any(
            isinstance(b, dict) and b.get("type") == "tool_use" for b in previous.get("content") or []):
        problems.append("the last assistant message has tool_use blocks without tool_result")
    return problems


class AnthropicFake(ScriptedAPI):
    provider = "anthropic"
    default_model = "claude-sonnet-4-0"

    def env(self) -> dict[str, str]:
        return {"ANTHROPIC_API_KEY": self.api_key, "ANTHROPIC_HOST": self.base_url}

    def matches(self, method: str, path: str) -> bool:
        return method == "POST" and path == "/v1/messages"

    def authorized(self, request: Recorded) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    def wants_stream(self, request: Recorded) -> bool:
        return bool(request.body.get("stream"))

    def validate(self, request: Recorded) -> list[str]:
        body = request.body
        problems = [] if request.headers.get("anthropic-version") else ["anthropic-version: header is required"]
        problems += sdk.typed_dict_problems("anthropic-stream" if body.get("stream") else "anthropic", body)
        if cache_breakpoints(body) > MAX_CACHE_BREAKPOINTS:
            problems.append(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
                            f"Found {cache_breakpoints(body)}.")
        problems += check_messages(body.get("messages"))
        for tool in body.get("tools", []):
            if not TOOL_NAME.match(str(tool.get("name"))) or \
                    (tool.get("input_schema") or {}).get("type") != "object":
                problems.append(f"tools: {tool.get('name')!r} needs a valid name and an object input_schema")
        return problems

    # --- answers ----------------------------------------------------------------------
    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        blocks += [{"type": "tool_use", "id": c.id or f"toolu_{n:02d}", "name": c.name,
                    "input": call_arguments_object(c)} for n, c in enumerate(reply.tool_calls)]
        return blocks

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1],
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, **reply.usage_details}

    def _stop(self, reply: Reply) -> str:
        return reply.finish or ("tool_use" if reply.tool_calls else "end_turn")

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        from anthropic.types import Message
        return sdk.dump(Message, {"id": "msg_fake", "type": "message", "role": "assistant",
                                  "model": reply.model or request.body["model"], "content": self._blocks(reply),
                                  "stop_reason": self._stop(reply), "stop_sequence": None,
                                  "usage": self._usage(reply)})

    @staticmethod
    def _event(data: dict[str, Any]) -> bytes:
        from anthropic.types import RawMessageStreamEvent
        return sse(sdk.dump_union(RawMessageStreamEvent, data), data["type"])

    def _frames(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        start = {**self.render_json(reply, request), "content": [], "stop_reason": None,
                 "usage": {**self._usage(reply), "output_tokens": 1}}
        yield self._event({"type": "message_start", "message": start})
        yield sse({"type": "ping"}, "ping")
        for index, block in enumerate(self._blocks(reply)):
            if block["type"] == "text":
                head, pieces = {"type": "text", "text": ""}, chunks(block["text"], reply.chunk_size)
                deltas = [{"type": "text_delta", "text": p} for p in pieces]
            else:
                raw = block["input"] if isinstance(block["input"], str) else json.dumps(block["input"])
                head = {**block, "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in chunks(raw, reply.chunk_size)]
            yield self._event({"type": "content_block_start", "index": index, "content_block": head})
            for delta in deltas:
                yield self._event({"type": "content_block_delta", "index": index, "delta": delta})
            yield self._event({"type": "content_block_stop", "index": index})
        yield self._event({"type": "message_delta", "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
                           "usage": {"output_tokens": reply.usage[1]}})
        yield self._event({"type": "message_stop"})

    def render_stream(self, reply: Reply, request: Recorded) -> Iterator[bytes | None]:
        return with_drop(self._frames(reply, request), reply)

    def error_body(self, fail: Fail) -> dict[str, Any]:
        status, message = CODES.get(fail.code or "", (fail.status, fail.message))
        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}

    def stream_error(self, fail: Fail) -> bytes:
        return sse(self.error_body(fail), "error")
