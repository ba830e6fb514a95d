"""Background runs: every turn runs on a pool thread; requests only start, watch and steer it.

A run is started by a request thread, which takes the session's lock and
writes the run's record; a pool thread (``run_threads`` per worker) owns it
from then on (``run_worker.py``). Blocking answers, SSE streams and pollers
all read the run's event log and record in the data dir (``run_state.py``),
so whichever gunicorn worker receives a wait, cancel or confirm can serve it:
cancels and decisions are written into the record, and the owner's watcher
thread notices them within ``run_poll_interval``. The watcher also refreshes
the owner's lease; a run whose owner is gone is marked ``interrupted`` by the
first reader that notices.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from contextlib import AbstractContextManager as ContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from filelock import FileLock

from goose_api.agent import Agent
from goose_api.errors import NoActiveRun, NotFound, RunFailed, SessionBusy
from goose_api.event_log import Event, EventLog
from goose_api.run_state import (HOST, INTERRUPTED, WAITING, Record, RunStateStore, is_active, new_record)
from goose_api.run_worker import LocalRun, RunExecutor, RunPool, interrupted_data
from goose_api.sessions import SessionStore
from goose_api.settings import Settings

log = logging.getLogger(__name__)

FINISH_GRACE = 1.0     # a run that just wrote its final state releases the session lock right after
CANCEL_WAIT = 10.0     # how long POST /cancel waits for the run to stop before answering 202
CLOSE_WAIT = 5.0       # how long close() waits for cancelled runs to save their last step
LIVENESS_CHECK = 1.0   # how often a waiting reader checks that the run's owner is still alive
RETRY_AFTER = "2"


@dataclass(frozen=True)
class RunRef:
    """A run to wait for, and the event id after which its answer is to be found."""

    session_id: str
    run_id: str
    after: int


class RunService:
    def __init__(self, settings: Settings, store: SessionStore, agent: Agent, state: RunStateStore,
                 track: Callable[[], ContextManager[Any]] = nullcontext):
        self.settings = settings
        self.track = track  # held while a run executes: the active-runs gauge
        self.store = store
        self.state = state
        self.poll = settings.run_poll_interval
        self._executor = RunExecutor(store, agent, state, self._forget)
        self._pool = RunPool(settings.run_threads)
        self._local: dict[str, LocalRun] = {}
        self._lock = threading.Lock()
        self._instance = uuid.uuid4().hex
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()
        self.stopping = threading.Event()  # set on SIGTERM: event streams end, clients reconnect elsewhere

    # --- starting -------------------------------------------------------------------

    def start(self, session_id: str, prompt: str, *, kind: str, stream: bool = False) -> RunRef:
        """Take the session and hand the turn to the pool.

        Raises:
            SessionBusy: a run (or another holder) has the session; carries ``active_run_id``.
        """
        lock = self._acquire(session_id)
        run_id = "run_" + uuid.uuid4().hex[:16]
        try:
            previous = self.state.read(session_id)
            if is_active(previous):  # we hold the session's lock, so its owner died holding it
                self._interrupt(previous)
            with self.state.lock(session_id):
                base = self._last_event_id(self.state.read(session_id))
                run = LocalRun(session_id, run_id, prompt, kind, stream, self.state.log(session_id, run_id, base),
                               self.state, self.poll, lock)
                with self._lock:
                    self._local[run_id] = run  # before the record: a reader must never see it ownerless
                owner = {"pid": os.getpid(), "host": HOST, "instance": self._instance}
                self.state.write(new_record(session_id, run_id, owner, kind=kind, stream=stream, event_base=base,
                                            **self._session_marks(session_id)))
                self.state.prune_logs(session_id)
        except BaseException:
            self._forget_id(run_id)
            lock.release()
            raise
        self._start_watcher()
        self._pool.submit(lambda: self._execute(run))
        log.info("run started session=%s run=%s kind=%s stream=%s", session_id, run_id, kind, stream)
        return RunRef(session_id, run_id, base)

    def _execute(self, run: LocalRun) -> None:
        with self.track():
            self._executor.execute(run)

    def _acquire(self, session_id: str) -> FileLock:
        """The session's lock; a run that is just finishing gets ``FINISH_GRACE`` to let go of it."""
        deadline = time.monotonic() + FINISH_GRACE
        while True:
            try:
                return self.store.acquire(session_id)
            except SessionBusy:
                record = self.status(session_id)
                if is_active(record) or time.monotonic() >= deadline:
                    raise self._busy(session_id, record) from None
            time.sleep(0.02)

    @staticmethod
    def _busy(session_id: str, record: Record | None) -> SessionBusy:
        active = record["run_id"] if is_active(record) else None
        return SessionBusy(f"Session {session_id} is busy with another turn; follow it with GET /session/{session_id}"
                           f" (or cancel it with POST /session/{session_id}/cancel) and retry when it ends",
                           details={"session_id": session_id, "active_run_id": active},
                           headers={"Retry-After": RETRY_AFTER})

    @contextmanager
    def hold_idle(self, session_id: str) -> Iterator[None]:
        """Hold an idle session (for delete and summarize) so that no turn starts meanwhile.

        Raises:
            SessionBusy: a run has it.
        """
        lock = self._acquire(session_id)
        try:
            yield
        finally:
            lock.release()

    def _last_event_id(self, record: Record | None) -> int:
        if record is None:
            return 0
        return max(int(record.get("last_event_id") or 0), self.state.log_of(record).last_id())

    def _session_marks(self, session_id: str) -> dict[str, Any]:
        """Where the session stands before the run: what a waiting answer counts from."""
        session = self.store.load(session_id)
        return {"first_message": len(session.messages), "usage_base": _accumulated(session.metadata)}

    # --- reading ----------------------------------------------------------------------

    def status(self, session_id: str) -> Record | None:
        """The session's run record; an active run whose owner is gone is marked interrupted first."""
        record = self.state.read(session_id)
        if is_active(record) and self._owner_gone(record):
            record = self._interrupt(record)
        return record

    def _owner_gone(self, record: Record) -> bool:
        if (record.get("owner") or {}).get("instance") == self._instance:
            with self._lock:
                return record["run_id"] not in self._local
        return self.state.owner_gone(record)

    def _interrupt(self, record: Record) -> Record | None:
        session_id, run_id = record["session_id"], record["run_id"]
        log_ = self.state.log_of(record)
        data = interrupted_data(session_id, run_id, "owner_gone")
        event_id = self.state.conclude(session_id, run_id, log_, INTERRUPTED, data, only_if_active=True)
        if event_id is not None:
            log_.append("error", data, event_id=event_id)
            log.warning("run interrupted session=%s run=%s owner_pid=%s", session_id, run_id,
                        (record.get("owner") or {}).get("pid"))
        return self.state.read(session_id)

    def wait(self, ref: RunRef, timeout: float | None = None) -> dict[str, Any] | None:
        """The run's answer: its ``done`` payload, or a waiting-for-approval answer.

        Returns None when ``timeout`` seconds pass first.

        Raises:
            RunFailed: the run ended with an error (re-raised with the error's status).
        """
        record = self.state.read(ref.session_id) or {}
        reader = self.state.log(ref.session_id, ref.run_id, int(record.get("event_base") or 0)).follow(ref.after)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = LIVENESS_CHECK if deadline is None else min(LIVENESS_CHECK, deadline - time.monotonic())
            for event in reader.wait(remaining, self.poll):
                answer = self._answer_of(ref, event)
                if answer is not None:
                    return answer
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self.status(ref.session_id)  # a dead owner's run gets its error event here

    def _answer_of(self, ref: RunRef, event: Event) -> dict[str, Any] | None:
        if event.type == "done":
            return event.data
        if event.type == "error":
            raise failure(event.data)
        if event.type == "approval_required":
            record = self.state.read(ref.session_id)
            if record is not None and record.get("run_id") == ref.run_id and record.get("state") == WAITING:
                return self.waiting_payload(record)
        return None

    def waiting_payload(self, record: Record) -> dict[str, Any]:
        """The answer of a turn that stopped at a tool call needing approval."""
        session = self.store.load(record["session_id"])
        added = session.messages[int(record.get("first_message") or 0):]
        pending = record["pending_approvals"]
        names = ", ".join(sorted({p["tool"] or "?" for p in pending}))
        return {"status": "waiting_approval",
                "message": f"Waiting for approval of {names}: POST /session/{record['session_id']}/confirm",
                "session_id": record["session_id"], "run_id": record["run_id"], "response": "",
                "messages": [m.to_json() for m in added],
                "usage": _usage_since(record.get("usage_base") or {}, _accumulated(session.metadata)),
                "pending_approvals": pending}

    def log_of(self, session_id: str, run_id: str | None = None) -> tuple[Record, EventLog]:
        """The record and event log of the session's current or last run (or of ``run_id``, while kept).

        Raises:
            NotFound: the session never ran a turn, or that run's log is gone.
        """
        record = self.status(session_id)
        if record is None:
            raise NotFound(f"Session {session_id} has not run a turn yet; send one with POST /session/reply")
        if run_id is not None and run_id != record["run_id"]:
            path = self.state.dir(session_id) / f"{run_id}.events.jsonl"
            if not path.is_file():
                raise NotFound(f"Run {run_id} of session {session_id} is unknown or no longer kept")
            return record, self.state.log(session_id, run_id, 0)
        return record, self.state.log_of(record)

    # --- steering ---------------------------------------------------------------------

    def cancel(self, session_id: str, reason: str = "cancel") -> tuple[Record, dict[str, Any] | None]:
        """Ask the session's run to stop at its next step and wait (``CANCEL_WAIT``) until it has.

        Returns the record and the run's final event data (None if it has not stopped yet).

        Raises:
            NoActiveRun: nothing runs on the session.
        """
        record = self.status(session_id)
        if not is_active(record):
            raise NoActiveRun(f"Session {session_id} has no run in progress; nothing to cancel",
                              details={"session_id": session_id})
        reader = self.state.log_of(record).follow(0)  # from the start: the run may end before we look
        self.state.update(session_id, record["run_id"],
                          lambda r: r.__setitem__("cancel", {"requested": time.time(), "reason": reason}))
        with self._lock:
            local = self._local.get(record["run_id"])
        if local is not None:
            local.request_cancel()
        deadline = time.monotonic() + CANCEL_WAIT
        while time.monotonic() < deadline:
            for event in reader.wait(min(LIVENESS_CHECK, deadline - time.monotonic()), self.poll):
                if event.terminal:
                    return self.state.read(session_id) or record, event.data
            self.status(session_id)
        return record, None

    def confirm(self, session_id: str, call_id: str, action: str) -> RunRef:
        """Record the user's decision on a pending tool call; the owner resumes within a poll interval.

        Raises:
            NoActiveRun: no run waits for approval. NotFound: no pending call has that id.
        """
        record = self.status(session_id)
        if not is_active(record) or not record["pending_approvals"]:
            raise NoActiveRun(f"Session {session_id} has no tool call waiting for approval",
                              details={"session_id": session_id})
        after = self.state.log_of(record).last_id()

        def decide(r: Record) -> bool:
            if not any(p["id"] == call_id for p in r["pending_approvals"]):
                return False
            r["decisions"][call_id] = action
            return True
        if self.state.update(session_id, record["run_id"], decide) is None:
            pending = ", ".join(p["id"] for p in record["pending_approvals"]) or "none"
            raise NotFound(f"No tool call {call_id!r} waits for approval in session {session_id}; "
                           f"pending: {pending}")
        with self._lock:
            local = self._local.get(record["run_id"])
        if local is not None:
            local.wake.set()
        log.info("tool call confirmed session=%s run=%s action=%s", session_id, record["run_id"], action)
        return RunRef(session_id, record["run_id"], after)

    # --- the owner's watcher ------------------------------------------------------------

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="run-watcher", daemon=True)
                self._watcher.start()

    def _watch(self) -> None:
        """Notice cancels and decisions sent to other workers; keep this process's leases fresh."""
        next_beat = 0.0
        while not self._closed.wait(self.poll):
            with self._lock:
                runs = list(self._local.values())
            beat = time.monotonic() >= next_beat
            for run in runs:
                try:
                    self._look_at(run, beat)
                except (OSError, ValueError):
                    log.exception("run watcher failed session=%s run=%s", run.session_id, run.run_id)
            if beat:
                next_beat = time.monotonic() + self.settings.run_heartbeat_interval

    def _look_at(self, run: LocalRun, beat: bool) -> None:
        stamp = self.state.stamp(run.session_id)
        if stamp != run.seen_stamp:
            run.seen_stamp = stamp
            record = self.state.read(run.session_id) or {}
            if record.get("run_id") == run.run_id:
                if record.get("cancel"):
                    run.request_cancel()
                if record.get("decisions"):
                    run.wake.set()
        if beat and not run.finished.is_set():
            self.state.update(run.session_id, run.run_id,
                              lambda r: r["owner"].__setitem__("heartbeat", time.time()))

    def _forget(self, run: LocalRun) -> None:
        self._forget_id(run.run_id)

    def _forget_id(self, run_id: str) -> None:
        with self._lock:
            self._local.pop(run_id, None)

    def begin_shutdown(self) -> None:
        """The worker got SIGTERM: end event streams now, so in-flight requests can finish."""
        self.stopping.set()

    def close(self) -> None:
        """Stop this process's runs at their next step (they end ``interrupted``: reason shutdown)."""
        self.stopping.set()
        with self._lock:
            runs = list(self._local.values())
        for run in runs:
            run.request_cancel(shutdown=True)
        deadline = time.monotonic() + CLOSE_WAIT
        for run in runs:
            run.finished.wait(max(0.0, deadline - time.monotonic()))
        self._closed.set()
        self._pool.close()
        if runs:
            log.info("runs closed (%d stopped)", len(runs))


def failure(data: dict[str, Any]) -> RunFailed:
    """The HTTP error an ``error`` event stands for."""
    details = {k: v for k, v in data.items() if k not in ("status", "error", "message", "http_status", "retry_after")}
    headers = {"Retry-After": str(data["retry_after"])} if data.get("retry_after") else None
    return RunFailed(int(data.get("http_status") or 500), str(data.get("error") or "internal_error"),
                     str(data.get("message") or "The run failed"), details=details, headers=headers)


def _accumulated(metadata: dict[str, Any]) -> dict[str, int]:
    return {key: int(metadata.get(f"accumulated_{key}") or 0) for key in ("input_tokens", "output_tokens",
                                                                          "total_tokens")}


def _usage_since(base: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    """Tokens the run used so far: the session's running sums, less what they were at its start."""
    return {key: max(0, now[key] - int(base.get(key) or 0)) for key in now}
