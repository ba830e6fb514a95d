"""The owner's side of a run: drive the agent on a pool thread and record what it does.

``LocalRun`` is one run this process owns. It is the agent's ``TurnControl``
(cancel event, current step, approval decisions) and holds the session's lock
for the whole turn. ``RunExecutor`` turns the agent's events into the run's
event log and record, and ends every run with exactly one terminal event:
``done`` (the blocking answer's payload) or ``error``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from filelock import FileLock

from goose_api.agent import Agent
from goose_api.approvals import ACTIONS
from goose_api.background import TurnCancelled
from goose_api.errors import ApiError
from goose_api.event_log import EventLog
from goose_api.events import (ApprovalRequired, MessageAdded, Notification, TextChunk, ToolAnswered,
                              ToolRequested, TurnFinished, Warning)
from goose_api.run_state import FAILED, IDLE, INTERRUPTED, RUNNING, WAITING, Record, RunStateStore
from goose_api.sessions import SessionStore

log = logging.getLogger(__name__)


@dataclass(eq=False)
class LocalRun:
    """A run owned by this process; the agent steers by it (see ``agent.TurnControl``)."""

    session_id: str
    run_id: str
    prompt: str
    kind: str                      # "start" or "reply": picks the answer's message
    stream: bool
    log: EventLog
    state: RunStateStore
    poll: float
    session_lock: FileLock
    cancel_event: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    shutdown: bool = False         # stopped because this process is stopping: the run is "interrupted"
    seen_stamp: Any = None         # the record version the watcher looked at last
    streamed: bool = False         # text deltas went out since the last assistant message
    _step: str = "the turn before its first step"
    _cancelled: str | None = None

    def step(self, description: str) -> None:
        self._step = description

    def cancelled_step(self) -> str:
        return self._cancelled or self._step

    def request_cancel(self, *, shutdown: bool = False) -> None:
        """Stop at the next step; remembers what was running at this moment."""
        if not self.cancel_event.is_set():
            self._cancelled = self._step
            self.shutdown = shutdown
            log.info("run cancel requested session=%s run=%s during=%s", self.session_id, self.run_id, self._step)
        self.cancel_event.set()
        self.wake.set()

    def decision(self, request: dict[str, Any]) -> str:
        """Wait for ``POST /confirm`` (any worker) to decide ``request``; the record carries it."""
        call_id = request["id"]
        while True:
            self.wake.clear()
            record = self.state.read(self.session_id) or {}
            action = (record.get("decisions") or {}).get(call_id) if record.get("run_id") == self.run_id else None
            if action in ACTIONS:
                self.state.update(self.session_id, self.run_id, lambda r: _resume(r, call_id))
                return action
            if self.cancel_event.is_set():
                raise TurnCancelled("cancelled while waiting for approval")
            self.wake.wait(self.poll)


def _resume(record: Record, call_id: str) -> None:
    record["decisions"].pop(call_id, None)
    record["pending_approvals"] = [p for p in record["pending_approvals"] if p["id"] != call_id]
    record["state"] = WAITING if record["pending_approvals"] else RUNNING


def pending_entry(request: dict[str, Any]) -> dict[str, Any]:
    """A tool call waiting for approval, as listed in ``pending_approvals``."""
    value = request["toolCall"].get("value") or {}
    return {"id": request["id"], "tool": value.get("name"), "arguments": value.get("arguments") or {},
            "requested": time.time()}


class RunPool:
    """``size`` daemon threads: a run blocked on an approval never keeps a stopping worker alive."""

    def __init__(self, size: int):
        self.size = size
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"run-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class RunExecutor:
    """Runs one ``LocalRun`` to its end on the calling (pool) thread."""

    def __init__(self, store: SessionStore, agent: Agent, state: RunStateStore,
                 on_finished: Callable[[LocalRun], None]):
        self.store = store
        self.agent = agent
        self.state = state
        self.on_finished = on_finished

    def execute(self, run: LocalRun) -> None:
        finished: TurnFinished | None = None
        error: ApiError | None = None
        started = time.monotonic()
        try:
            session = self.store.load(run.session_id)
            for event in self.agent.reply(session, run.prompt, run, stream=run.stream):
                if isinstance(event, TurnFinished):
                    finished = event
                else:
                    self._record(run, event)
        except ApiError as exc:
            error = exc
            log.info("run failed session=%s run=%s error=%s", run.session_id, run.run_id, exc.code)
        except Exception:  # a bug: this run fails with a 500, the server goes on
            log.exception("run crashed session=%s run=%s", run.session_id, run.run_id)
            error = ApiError("Internal error during the run; the server log has the details")
        finally:
            if finished is None and error is None:
                error = ApiError("The run stopped unexpectedly; the server log has the details")
            outcome = self._finish(run, finished, error)
            log.info("run finished session=%s run=%s outcome=%s seconds=%.3f", run.session_id, run.run_id,
                     outcome, time.monotonic() - started)

    def _record(self, run: LocalRun, event: Any) -> None:
        """One agent event into the event log (and, for approvals, the record first)."""
        if isinstance(event, TextChunk):
            run.streamed = True
            run.log.append("message", {"text": event.text})
        elif isinstance(event, MessageAdded):
            if event.message.role == "assistant":
                if not run.streamed and event.message.text():
                    run.log.append("message", {"text": event.message.text()})
                run.streamed = False
        elif isinstance(event, ToolRequested):
            run.log.append("tool_request", event.content)
        elif isinstance(event, ToolAnswered):
            run.log.append("tool_response", event.content)
        elif isinstance(event, ApprovalRequired):
            entry = pending_entry(event.content)
            self.state.update(run.session_id, run.run_id, lambda r: _wait_for(r, entry))
            run.log.append("approval_required", entry)
        elif isinstance(event, Notification):
            run.log.append("notification", event.data)
        elif isinstance(event, Warning):
            run.log.append("notification", {"type": "warning", "message": event.message})

    def _finish(self, run: LocalRun, finished: TurnFinished | None, error: ApiError | None) -> str:
        """Final record, then the session lock, then the terminal event (whose id is reserved first).

        Releasing the lock before the terminal event is written means whoever
        sees ``done`` can send the next prompt at once; the reserved id keeps
        the next run's events after it.
        """
        if error is not None:
            kind, data, state = "error", error_data(run.session_id, run.run_id, error), FAILED
        elif run.shutdown:
            kind, data, state = "error", interrupted_data(run.session_id, run.run_id, "shutdown"), INTERRUPTED
        else:
            kind, data, state = "done", done_payload(run, finished), IDLE
        event_id = None
        try:
            event_id = self.state.conclude(run.session_id, run.run_id, run.log, state, data)
        finally:
            run.session_lock.release()
            try:
                run.log.append(kind, data, event_id=event_id)
            finally:
                run.finished.set()
                self.on_finished(run)
        return f"{data['status']}:{data['error']}" if kind == "error" else data["status"]


def _wait_for(record: Record, entry: dict[str, Any]) -> None:
    record["state"] = WAITING
    record["pending_approvals"] = [p for p in record["pending_approvals"] if p["id"] != entry["id"]] + [entry]


def done_payload(run: LocalRun, finished: TurnFinished) -> dict[str, Any]:
    """The blocking answer of a finished turn (also the ``done`` event's data)."""
    if finished.cancelled is not None:
        message = f"Cancelled {finished.cancelled}"
    elif run.kind == "start":
        message = f"Session started with prompt: {run.prompt}"
    else:
        message = f"Reply: {finished.response}"
    body: dict[str, Any] = {
        "status": finished.status, "message": message, "session_id": run.session_id, "run_id": run.run_id,
        "response": finished.response, "messages": [m.to_json() for m in finished.messages],
        "usage": finished.usage.to_json(),
    }
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
    why = ("the server was stopping" if reason == "shutdown"
           else "the worker process running it stopped (crash or restart)")
    return {"status": "error", "error": "run_interrupted", "reason": reason,
            "message": f"The run was interrupted: {why}. The session is kept; send the next prompt to continue.",
            "session_id": session_id, "run_id": run_id, "http_status": 500}
