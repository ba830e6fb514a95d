"""What a run answers: the ``done`` payload, the ``error`` data, the waiting-for-approval answer.

A run's terminal event carries the answer the blocking request gives; a
waiter in any worker turns it back into that answer (``failure`` for errors).
"""

from __future__ import annotations

from typing import Any

from goose_api.agent.events import TurnFinished
from goose_api.conversation import TOKEN_FIELDS, accumulated_field
from goose_api.errors import ApiError, RunFailed
from goose_api.runs.state import Record
from goose_api.sessions.store import SessionStore

INTERRUPTED_RETRY_AFTER = "2"


def done_payload(session_id: str, run_id: str, kind: str, prompt: str | None, finished: TurnFinished,
                 resumed_from: str | None = None) -> dict[str, Any]:
    """The blocking answer of a finished turn (also the ``done`` event's data)."""
    if finished.cancelled is not None:
        message = f"Cancelled {finished.cancelled}"
    elif kind == "start":
        message = f"Session started with prompt: {prompt}"
    elif kind == "resume":
        message = f"Resumed run {resumed_from}: {finished.response}"
    else:
        message = f"Reply: {finished.response}"
    body: dict[str, Any] = {
        "status": finished.status, "message": message, "session_id": session_id, "run_id": run_id,
        "response": finished.response, "messages": [m.to_json() for m in finished.messages],
        "usage": finished.usage.to_json(),
    }
    if resumed_from:
        body["resumed_from"] = resumed_from
    if finished.warnings:
        body["warnings"] = finished.warnings
    if finished.cancelled is not None:
        body["cancelled"] = finished.cancelled
    return body


def error_data(session_id: str, run_id: str, exc: ApiError) -> dict[str, Any]:
    """An ``error`` event: the error's JSON answer plus what is needed to give it again."""
    data = {**exc.payload(), "session_id": session_id, "run_id": run_id, "http_status": exc.status}
    if exc.headers.get("Retry-After"):
        data["retry_after"] = exc.headers["Retry-After"]
    return data


def interrupted_data(session_id: str, run_id: str, reason: str) -> dict[str, Any]:
    """The ``error`` of a run cut by a shutdown (stopped at a saved step) or by its process's death."""
    why = ("the server was stopping; it stopped at a saved step" if reason == "shutdown"
           else "the worker process running it stopped (crash or restart)")
    return {"status": "error", "error": "run_interrupted", "reason": reason,
            "message": f"The run was interrupted: {why}. Continue it with POST /session/{session_id}/resume, "
                       "or send the next prompt.",
            "session_id": session_id, "run_id": run_id, "http_status": 503,
            "retry_after": INTERRUPTED_RETRY_AFTER}


def failure(data: dict[str, Any]) -> RunFailed:
    """The HTTP error an ``error`` event stands for."""
    details = {k: v for k, v in data.items() if k not in ("status", "error", "message", "http_status", "retry_after")}
    headers = {"Retry-After": str(data["retry_after"])} if data.get("retry_after") else None
    return RunFailed(int(data.get("http_status") or 500), str(data.get("error") or "internal_error"),
                     str(data.get("message") or "The run failed"), details=details, headers=headers)


def waiting_payload(store: SessionStore, record: Record) -> dict[str, Any]:
    """The answer of a turn that stopped at a tool call needing approval."""
    session = store.load(record["session_id"])
    added = session.messages[int(record.get("first_message") or 0):]
    pending = record["pending_approvals"]
    names = ", ".join(sorted({p["tool"] or "?" for p in pending}))
    return {"status": "waiting_approval",
            "message": f"Waiting for approval of {names}: POST /session/{record['session_id']}/confirm",
            "session_id": record["session_id"], "run_id": record["run_id"], "response": "",
            "messages": [m.to_json() for m in added],
            "usage": usage_since(record.get("usage_base") or {}, accumulated(session.metadata)),
            "pending_approvals": pending}


def accumulated(metadata: dict[str, Any]) -> dict[str, int]:
    return {name: int(metadata.get(accumulated_field(name)) or 0) for name in TOKEN_FIELDS}


def usage_since(base: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    """Tokens the run used so far: the session's running sums, less what they were at its start."""
    return {key: max(0, now[key] - int(base.get(key) or 0)) for key in now}
