"""The owner's side of a run: drive the agent on a pool thread and record what it does.

``LocalRun`` is one run this process owns. It is the agent's ``TurnControl``
(cancel and stop events, current step, approval decisions, the journal) and
holds the session's lock for the whole turn. ``RunExecutor`` turns the agent's
events into the run's event log and record, and ends every run with exactly
one terminal event: ``done`` (the blocking answer's payload) or ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Iterator

from goose_api import conversation as conv
from goose_api.agent.approvals import ACTIONS, DENY
from goose_api.agent.cancellable import TurnCancelled
from goose_api.agent.control import CallState
from goose_api.agent.events import (
    ApprovalRequired,
    MessageAdded,
    Notification,
    TextChunk,
    ToolAnswered,
    ToolRequested,
    TurnFinished,
    TurnWarning,
)
from goose_api.agent.loop import Agent
from goose_api.agent.options import TurnOptions
from goose_api.errors import ApiError
from goose_api.runs.answers import done_payload, error_data, interrupted_data
from goose_api.runs.event_log import Event, EventLog
from goose_api.runs.journal import RunJournal
from goose_api.runs.state import FAILED, IDLE, INTERRUPTED, RUNNING, WAITING, Record, RunStateStore
from goose_api.sessions.store import SessionStore
from goose_api.storage.flock import HeldLock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSpec:
    """What a run does: a prompt's turn (``start``, ``reply``) or the resume of an interrupted one.

    Queued turns wait on disk as this (``to_json``) until their run starts.
    """

    run_id: str
    kind: str                      # "start", "reply" or "resume": picks the answer's message
    prompt: str | None = None      # the turn's prompt (a resume carries it, in case it was never saved)
    stream: bool = False
    webhook: str | None = None     # where the final event is POSTed
    turn: str | None = None        # the run that received the prompt (a resume keeps it); None: this run
    resumed_from: str | None = None
    turn_start: int | None = None  # a resume: how many messages the session had when the turn began
    options: dict[str, Any] | None = None  # the turn's own model and instructions (``TurnOptions.to_json``)
    client: str | None = None      # the name of the key the turn runs for (its always_allow choices)
    webhook_key: str | None = None  # whose secret signs the webhook: that key's; None: the server's

    @property
    def turn_id(self) -> str:
        return self.turn or self.run_id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunSpec":
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(eq=False)
class LocalRun:
    """A run owned by this process; the agent steers by it (see ``agent.TurnControl``)."""

    spec: RunSpec
    session_id: str
    log: EventLog
    state: RunStateStore
    journal_store: RunJournal
    poll: float
    session_lock: HeldLock
    approval_timeout: float | None = None  # seconds a tool call waits for a decision before it is denied
    cancel_event: threading.Event = field(default_factory=threading.Event)
    stop_event: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    shutdown: bool = False         # stopped because this process is stopping: the run is "interrupted"
    abandon_at: float | None = None  # (monotonic) a stopping run's step in flight is abandoned then
    seen_stamp: Any = None         # the record version the watcher looked at last
    streamed: bool = False         # text deltas went out since the last assistant message
    _step: str = "the turn before its first step"
    _cancelled: str | None = None

    run_id = property(lambda self: self.spec.run_id)
    kind = property(lambda self: self.spec.kind)
    prompt = property(lambda self: self.spec.prompt)
    stream = property(lambda self: self.spec.stream)
    client = property(lambda self: self.spec.client)

    def step(self, description: str) -> None:
        self._step = description

    def cancelled_step(self) -> str:
        return self._cancelled or self._step

    def request_cancel(self, *, shutdown: bool = False) -> None:
        """Stop at the next step; remembers what was running at this moment."""
        if not self.cancel_event.is_set():
            self._cancelled = self._cancelled or self._step
            self.shutdown = self.shutdown or shutdown
            log.info("run cancel requested session=%s run=%s during=%s", self.session_id, self.run_id, self._step)
        self.cancel_event.set()
        self.wake.set()

    def request_stop(self, budget: float) -> None:
        """Shutdown: let the step in flight finish (for ``budget`` seconds at most), start no other."""
        if not self.stop_event.is_set():
            self._cancelled = self._step
            self.shutdown = True
            self.abandon_at = time.monotonic() + max(0.0, budget)
            log.info("run stopping session=%s run=%s during=%s", self.session_id, self.run_id, self._step)
        self.stop_event.set()
        self.wake.set()

    def decision(self, request: dict[str, Any]) -> str:
        """Wait for ``POST /confirm`` (any worker) to decide ``request``; the record carries it.

        With no decision within ``approval_timeout`` the call is denied: a run
        waiting for approval holds a run thread and its streams.
        """
        call_id = conv.call_id(request)
        deadline = None if self.approval_timeout is None else time.monotonic() + self.approval_timeout
        while True:
            self.wake.clear()
            record = self.state.read(self.session_id) or {}
            action = (record.get("decisions") or {}).get(call_id) if record.get("run_id") == self.run_id else None
            if action in ACTIONS:
                self.state.update(self.session_id, self.run_id, lambda r: _resume(r, call_id))
                return action
            if self.cancel_event.is_set() or self.stop_event.is_set():
                raise TurnCancelled("cancelled while waiting for approval")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self._expire(call_id)
            self.wake.wait(self.poll if remaining is None else min(self.poll, remaining))

    def _expire(self, call_id: str) -> str:
        """No decision in time: the call is no longer pending (a late confirm is 404) and is denied.

        A decision that landed meanwhile (under the record's lock) still counts.
        """
        late: list[Any] = []

        def expire(record: Record) -> None:
            late.append((record.get("decisions") or {}).get(call_id))
            _resume(record, call_id)
        self.state.update(self.session_id, self.run_id, expire)
        if late and late[0] in ACTIONS:
            return late[0]
        message = f"No decision on tool call {call_id} within approval_timeout ({self.approval_timeout:g} s): denied"
        self.log.append("notification", {"type": "warning", "message": message})
        log.info("tool call approval timed out session=%s run=%s call=%s", self.session_id, self.run_id, call_id)
        return DENY

    def journal(self, step: str, request: dict[str, Any] | None = None, **data: Any) -> None:
        """One step of a tool call (or, without ``request``, of the run) into the session's journal."""
        self.journal_store.write(self.session_id, {
            "turn": self.spec.turn_id, "run": self.run_id, "call": conv.call_id(request) if request else None,
            "tool": conv.tool_call_name(request) if request else None, "step": step, **data}, sync=request is not None)


@dataclass(frozen=True)
class JournalRecovery:
    """The journal's view of a turn's tool calls, for ``Agent.resume``."""

    calls: dict[str, CallState]
    ask_started: bool

    def prior(self, call_id: str) -> CallState | None:
        return self.calls.get(call_id)


def _resume(record: Record, call_id: str) -> None:
    record["decisions"].pop(call_id, None)
    record["pending_approvals"] = [p for p in record["pending_approvals"] if p["id"] != call_id]
    record["state"] = WAITING if record["pending_approvals"] else RUNNING


def pending_entry(request: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    """A tool call waiting for approval, as listed in ``pending_approvals``."""
    entry = {"id": conv.call_id(request), "tool": conv.tool_call_name(request),
             "arguments": conv.tool_call_arguments(request), "requested": time.time()}
    if reason:
        entry["reason"] = reason
    return entry


class RunExecutor:
    """Runs one ``LocalRun`` to its end on the calling (pool) thread.

    ``release(run)`` lets go of the session when the run has its final state
    (or hands it to the next queued turn); ``ended(run, event)`` hears of the
    terminal event once it is written (webhooks, bookkeeping).
    """

    def __init__(self, store: SessionStore, agent: Agent, state: RunStateStore, journal: RunJournal, *,
                 ask_started: bool, release: Callable[[LocalRun], None], ended: Callable[[LocalRun, Event], None]):
        self.store = store
        self.agent = agent
        self.state = state
        self.journal = journal
        self.ask_started = ask_started
        self.release = release
        self.ended = ended

    def execute(self, run: LocalRun) -> None:
        finished: TurnFinished | None = None
        error: ApiError | None = None
        started = time.monotonic()
        try:
            run.journal("begun", kind=run.kind, resumed_from=run.spec.resumed_from)
            for event in self._events(run):
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

    def _events(self, run: LocalRun) -> Iterator[Any]:
        session = self.store.load(run.session_id)
        options = TurnOptions.from_json(run.spec.options)
        if run.kind == "resume":
            recovery = JournalRecovery(self.journal.calls(run.session_id, run.spec.turn_id), self.ask_started)
            since = session.messages[run.spec.turn_start or 0:]
            saved = any(m.role == "user" and m.text() == run.prompt for m in since)
            return self.agent.resume(session, run, recovery, stream=run.stream,
                                     prompt=None if saved or not run.prompt else run.prompt, options=options)
        return self.agent.reply(session, run.prompt or "", run, stream=run.stream, options=options)

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
            entry = pending_entry(event.content, event.reason)
            self.state.update(run.session_id, run.run_id, lambda r: _wait_for(r, entry))
            run.log.append("approval_required", entry)
        elif isinstance(event, Notification):
            run.log.append("notification", event.data)
        elif isinstance(event, TurnWarning):
            run.log.append("notification", {"type": "warning", "message": event.message})

    def _finish(self, run: LocalRun, finished: TurnFinished | None, error: ApiError | None) -> str:
        """Final record, then the session (released or handed on), then the terminal event (id reserved first).

        Letting go of the session before the terminal event is written means
        whoever sees ``done`` can send the next prompt at once; the reserved id
        keeps the next run's events after it. A turn that ended on its own
        during a shutdown is done; one the shutdown stopped is interrupted.
        """
        spec = run.spec
        if error is not None:
            kind, data, state = "error", error_data(run.session_id, run.run_id, error), FAILED
        elif run.shutdown and finished.cancelled is not None:
            kind, data, state = "error", interrupted_data(run.session_id, run.run_id, "shutdown"), INTERRUPTED
        else:
            kind, data, state = "done", done_payload(run.session_id, run.run_id, spec.kind, spec.prompt, finished,
                                                     spec.resumed_from), IDLE
        event_id = None
        try:
            run.journal("ended", outcome=state)
            event_id = self.state.conclude(run.session_id, run.run_id, run.log, state, data)
        finally:
            self.release(run)
            try:
                self.ended(run, run.log.append(kind, data, event_id=event_id))
            finally:
                run.finished.set()
        return f"{data['status']}:{data['error']}" if kind == "error" else data["status"]


def _wait_for(record: Record, entry: dict[str, Any]) -> None:
    record["state"] = WAITING
    record["pending_approvals"] = [p for p in record["pending_approvals"] if p["id"] != entry["id"]] + [entry]
