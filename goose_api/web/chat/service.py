"""Chat completions over the turn and run services.

A request names its session (``metadata.session_id`` or the
``X-Goose-Session-Id`` header), or continues the caller's session whose
history its earlier messages are (``matching.py``), or starts a session seeded
with them. The turn runs like any other (tools on the server, approvals,
durability); the answer is the turn's text, at once or as
``chat.completion.chunk`` deltas read from the run's event log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

from goose_api.auth import Client
from goose_api.errors import ApiError
from goose_api.runs.answers import failure
from goose_api.runs.service import RunRef
from goose_api.services import Services
from goose_api.web.chat.matching import find_session, seed
from goose_api.web.chat.request import ChatRequest, invalid
from goose_api.web.errors import openai_error
from goose_api.web.model_choice import turn_options

LIVENESS_CHECK = 1.0
CALL_SEPARATOR = "\n\n"  # between the texts of a turn's provider calls, in a streamed answer


@dataclass(frozen=True)
class Started:
    ref: RunRef
    model: str
    include_usage: bool

    @property
    def completion_id(self) -> str:
        return "chatcmpl-" + self.ref.run_id.removeprefix("run_")


def waiting_note(pending: list[dict[str, Any]], session_id: str) -> str:
    names = ", ".join(sorted({p.get("tool") or "?" for p in pending}))
    return (f"[goose is waiting for approval of {names}: confirm or deny it with POST "
            f"/session/{session_id}/confirm (or through the Responses API), then continue]")


class ChatService:
    def __init__(self, services: Services):
        self.services = services
        self.runs = services.runs

    def start(self, request: ChatRequest, client: Client, header_session: str | None) -> Started:
        """Start the turn on the named, matched or a new session.

        Raises:
            BadRequest, Forbidden: the request cannot be served. SessionNotFound: a named session is not the
            caller's. SessionBusy: a turn runs on it.
        """
        options = turn_options(self.services.providers, client, request.model, request.instructions)
        named = request.session_id or header_session
        if named is not None:
            try:
                session_id = self.services.access.check(named, client)
            except ApiError as exc:
                exc.details.setdefault("param", "metadata.session_id")
                raise
        else:
            session_id = find_session(self.services.access, client, request.earlier)
        if session_id is not None:
            ref = self.services.turns.reply(request.prompt, session_id, stream=request.stream, options=options,
                                            client=client.name)
        else:
            ref = self.services.turns.start(request.prompt, client, stream=request.stream,
                                            history=seed(request.earlier), options=options)
        return Started(ref, request.model, request.include_usage)

    # --- answering -----------------------------------------------------------------------

    def complete(self, started: Started) -> dict[str, Any]:
        """The whole answer, once the turn has it.

        Raises:
            RunFailed: the turn failed (its error, with its status).
        """
        answer = self.runs.wait(started.ref)
        text = answer.get("response") or ""
        if answer.get("status") == "waiting_approval":
            text = waiting_note(answer.get("pending_approvals") or [], started.ref.session_id)
        usage = answer.get("usage") or {}
        return {"id": started.completion_id, "object": "chat.completion", "created": int(time.time()),
                "model": started.model, "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": chat_usage(usage)}

    def chunks(self, started: Started) -> Iterator[str]:
        """The answer as SSE ``chat.completion.chunk`` frames, ending with ``[DONE]`` (an error ends it early)."""
        ref = started.ref
        yield self._chunk(started, {"role": "assistant", "content": ""})
        _, log = self.runs.log_of(ref.session_id, ref.run_id)
        reader, spoken, pending_gap = log.follow(ref.after), False, False
        while True:
            events = reader.wait(LIVENESS_CHECK, self.runs.poll)
            for event in events:
                if event.type == "message" and event.data.get("text"):
                    text = (CALL_SEPARATOR if pending_gap and spoken else "") + event.data["text"]
                    spoken, pending_gap = True, False
                    yield self._chunk(started, {"content": text})
                elif event.type == "tool_request":
                    pending_gap = True
                elif event.type == "approval_required":
                    note = waiting_note([event.data], ref.session_id)
                    yield from self._end(started, (CALL_SEPARATOR if spoken else "") + note, None)
                    return
                elif event.type == "done":
                    yield from self._end(started, None, event.data.get("usage") or {})
                    return
                elif event.type == "error":
                    error = failure(event.data)
                    yield sse(openai_error(error.payload(), error.status))
                    return
            if not events:
                if self.runs.stopping.is_set():
                    return
                self.runs.status(ref.session_id)  # a dead owner's run gets its error event here

    def _end(self, started: Started, text: str | None, usage: dict[str, int] | None) -> Iterator[str]:
        if text:
            yield self._chunk(started, {"content": text})
        yield self._chunk(started, {}, "stop")
        if started.include_usage:
            if usage is None:  # waiting for approval: the tokens so far
                usage = (self.runs.wait(started.ref, 0) or {}).get("usage")
            yield sse({**self._frame(started, []), "usage": chat_usage(usage or {})})
        yield "data: [DONE]\n\n"

    def _frame(self, started: Started, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": started.completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": started.model, "system_fingerprint": None, "choices": choices}

    def _chunk(self, started: Started, delta: dict[str, Any], finish: str | None = None) -> str:
        return sse(self._frame(started, [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]))


def chat_usage(usage: dict[str, int]) -> dict[str, int]:
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": int(usage.get("total_tokens") or prompt + completion)}


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def session_header(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise invalid("X-Goose-Session-Id must be a goose session id", "X-Goose-Session-Id")
    return value.strip() if value else None
