"""Background runs: every turn runs on a pool thread; requests only start, watch and steer it.

A run is started by a request thread, which takes the session's lock and
writes the run's record; a pool thread (at most ``run_threads`` per worker,
made on demand) owns it from then on (``run_worker.py``). Blocking answers, SSE streams and pollers
all read the run's event log and record in the data dir (``run_state.py``),
so whichever gunicorn worker receives a wait, cancel or confirm can serve it:
cancels and decisions are written into the record, and the owner's watcher
thread notices them within ``run_poll_interval``. The watcher also refreshes
the owner's lease; a run whose owner is gone is marked ``interrupted`` by the
first reader that notices (and by every worker's sweep, ``run_recovery.py``).

A busy session can queue turns (``run_queue.py``): the worker that ends a run
hands the session lock straight to the queue's head, so queued turns run in
order and nothing slips in between. On SIGTERM (``begin_shutdown``) every run
lets its step in flight finish and stops before the next one: it ends
``interrupted`` (reason ``shutdown``) at a saved step, ready for ``resume``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from goose_api.agent.loop import Agent
from goose_api.agent.options import TurnOptions
from goose_api.errors import ApiError, NoActiveRun, NotFound, NotResumable, ServerStopping, SessionBusy
from goose_api.ops.thread_pool import ElasticPool
from goose_api.runs.answers import accumulated, error_data, failure, interrupted_data, waiting_payload
from goose_api.runs.broker import TurnBroker
from goose_api.runs.event_log import Event, EventLog
from goose_api.runs.journal import RunJournal
from goose_api.runs.leases import QUEUED_TTL, SessionLease, SessionLeases
from goose_api.runs.local import LocalRuns
from goose_api.runs.queue import TurnQueue
from goose_api.runs.state import (
    FAILED,
    INTERRUPTED,
    PRUNE_SLACK,
    WAITING,
    Record,
    RunStateStore,
    is_active,
    new_record,
    owner_of,
)
from goose_api.runs.worker import LocalRun, RunExecutor, RunSpec
from goose_api.sessions.store import SessionStore
from goose_api.settings import Settings
from goose_api.storage.flock import HeldLock
from goose_api.storage.interfaces import QueueStorage

log = logging.getLogger(__name__)

FINISH_GRACE = 1.0     # a run that just wrote its final state releases the session lock right after
CANCEL_WAIT = 10.0     # how long POST /cancel waits for the run to stop before answering 202
CLOSE_WAIT = 5.0       # how long close() waits for cancelled runs to save their last step
LIVENESS_CHECK = 1.0   # how often a waiting reader checks that the run's owner is still alive
SHUTDOWN_MARGIN = 5.0  # of gunicorn's graceful timeout, kept for writing the stopped runs' last state
RETRY_AFTER = "2"

# session id, run id, webhook URL, the key whose secret signs it (None: the server's), terminal event
FinalListener = Callable[[str, str, "str | None", "str | None", Event], None]


RUN_ID_PATTERN = r"^run_[0-9a-f]{16}$"  # what ``new_run_id`` makes; match it whole (``fullmatch``)


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class RunRef:
    """A run to wait for, and the event id after which its answer is to be found."""

    session_id: str
    run_id: str
    after: int


class RunService:
    def __init__(self, settings: Settings, store: SessionStore, agent: Agent, state: RunStateStore,
                 journal: RunJournal, track: Callable[[], AbstractContextManager[Any]] = nullcontext,
                 on_final: FinalListener | None = None, queue: QueueStorage | None = None,
                 broker: TurnBroker | None = None, leases: SessionLeases | None = None):
        self.settings = settings
        self.queue_broker = broker  # REDIS_URL: turns go to worker processes through it (``broker.py``)
        self.leases = leases       # REDIS_URL: sessions are held through Redis leases (``leases.py``)
        self.track = track  # held while a run executes: the active-runs gauge
        self.store = store
        self.state = state
        self.journal = journal
        self.queue = queue if queue is not None else TurnQueue(state, settings.max_queued_turns)
        self.on_final = on_final  # hears of every run's terminal event (webhooks)
        self.poll = settings.run_poll_interval
        self._executor = RunExecutor(store, agent, state, journal,
                                     ask_started=settings.resume_started_tools == "ask",
                                     release=self._release, ended=self._ended)
        # Daemon threads, made on demand: a run waiting for approval never keeps a stopping worker alive.
        self._pool = ElasticPool(settings.run_threads, name="run")
        self._local = LocalRuns(state, self.poll, settings.run_heartbeat_interval)
        self._instance = uuid.uuid4().hex
        self.stopping = threading.Event()  # set on SIGTERM: no new runs; streams end, clients reconnect elsewhere

    # --- starting -------------------------------------------------------------------

    def start(self, session_id: str, prompt: str, *, kind: str, stream: bool = False,
              webhook: str | None = None, options: TurnOptions | None = None, client: str | None = None) -> RunRef:
        """Take the session and hand the turn to the pool; ``client``: the name of the key it runs for.

        Raises:
            SessionBusy: a run (or another holder) has the session; carries ``active_run_id``.
            ServerStopping: this worker is shutting down.
        """
        spec = RunSpec(new_run_id(), kind, prompt, stream, options=_options_json(options), client=client,
                       **self._webhook(webhook, client))
        return self._launch(session_id, self._acquire(session_id), spec)

    def _webhook(self, given: str | None, client: str | None) -> dict[str, str | None]:
        """Where a turn's final event goes and whose secret signs it: the caller's URL with the
        caller's key, else the ``webhook_url`` setting with the server's secret."""
        if given:
            return {"webhook": given, "webhook_key": client}
        return {"webhook": self.settings.webhook_url, "webhook_key": None}

    def resume(self, session_id: str, *, stream: bool = False, webhook: str | None = None,
               client: str | None = None) -> RunRef:
        """Drive the session's interrupted run on from its last saved step (a new run of the same turn).

        Raises:
            SessionBusy: a run has the session. NotResumable: its last run was not interrupted.
        """
        lock = self._acquire(session_id)
        try:
            record = self.state.read(session_id)
            if is_active(record):  # we hold the session's lock, so its owner died holding it
                record = self._interrupt(record)
            if record is None or record.get("state") != INTERRUPTED:
                state = (record or {}).get("state", "idle")
                raise NotResumable(f"Session {session_id} has no interrupted run to resume (its last run is "
                                   f"{state}); send the next prompt with POST /session/reply",
                                   details={"session_id": session_id})
            hook = self._webhook(webhook, client) if webhook else {
                "webhook": record.get("webhook"), "webhook_key": record.get("webhook_key")}
            spec = RunSpec(new_run_id(), "resume", record.get("prompt"), stream,
                           turn=record.get("turn") or record["run_id"], resumed_from=record["run_id"],
                           turn_start=int(record.get("turn_start", record.get("first_message")) or 0),
                           options=record.get("options"), client=client or record.get("client"), **hook)
        except BaseException:
            lock.release()
            raise
        return self._launch(session_id, lock, spec)

    def enqueue(self, session_id: str, prompt: str, *, front: bool = False, stream: bool = False,
                webhook: str | None = None, options: TurnOptions | None = None, client: str | None = None) -> str:
        """Queue a turn behind the session's run (``front``: next in line); returns its run id."""
        spec = RunSpec(new_run_id(), "reply", prompt, stream, options=_options_json(options), client=client,
                       **self._webhook(webhook, client))
        self.queue.push(session_id, spec, front=front)
        log.info("turn queued session=%s run=%s front=%s", session_id, spec.run_id, front)
        self.drain(session_id)
        return spec.run_id

    def drain(self, session_id: str) -> RunRef | None:
        """Start the next queued turn if the session is free (queued while idle, or left by a crash)."""
        if self.stopping.is_set() or not self.queue.items(session_id):
            return None
        try:
            lock = self._take(session_id)
        except SessionBusy:
            return None  # its run hands the session to the queue when it ends
        spec = None
        try:
            spec = self.queue.pop(session_id)
        finally:
            if spec is None:
                lock.release()
        return self._launch(session_id, lock, spec) if spec is not None else None

    def _launch(self, session_id: str, lock: HeldLock | SessionLease, spec: RunSpec) -> RunRef:
        """Start ``spec`` on a session whose lock we hold (released if it cannot start).

        Without a queue the run goes to this process's pool; with one
        (``REDIS_URL``) its record is written ownerless and a worker process
        gets it from the queue.
        """
        run = None
        try:
            if self.stopping.is_set():
                raise ServerStopping("This server is restarting and starts no new turn; retry in a few seconds",
                                     headers={"Retry-After": RETRY_AFTER})
            previous = self.state.read(session_id)
            if is_active(previous):
                if self.leases is not None and not self._owner_gone(previous):
                    raise self._busy(session_id, previous)  # a lease expired under a live run: the record wins
                previous = self._interrupt(previous)  # we hold the session's lock, so its owner died holding it
            with self.state.lock(session_id):  # an inactive record changes only under the session's lock: ours
                base = self._last_event_id(previous)
                if self.queue_broker is None:
                    run = LocalRun(spec, session_id, self.state.log(session_id, spec.run_id, base), self.state,
                                   self.journal, self.poll, lock, self.settings.approval_timeout)
                    self._local.add(run)  # before the record: a reader must never see it ownerless
                self._write_record(session_id, spec, base, queued_owner(lock) if run is None else None)
        except BaseException:
            self._local.forget(spec.run_id)
            lock.release()
            raise
        if run is None:
            self._send(session_id, lock, spec, base)
        else:
            self._pool.submit(self._execute, run).add_done_callback(_log_failure)
        log.info("run started session=%s run=%s kind=%s stream=%s queued=%s", session_id, spec.run_id, spec.kind,
                 spec.stream, run is None)
        return RunRef(session_id, spec.run_id, base)

    def _write_record(self, session_id: str, spec: RunSpec, base: int, owner: dict[str, Any] | None) -> None:
        """The new run's record (hold the state lock); ``owner`` None: this process runs it."""
        if spec.kind != "resume":
            self.journal.rotate(session_id)
        marks = self._session_marks(session_id)
        self.state.write(new_record(session_id, spec.run_id, owner or owner_of(self._instance), kind=spec.kind,
                                    stream=spec.stream, event_base=base, turn=spec.turn_id,
                                    resumed_from=spec.resumed_from, webhook=spec.webhook,
                                    webhook_key=spec.webhook_key, client=spec.client,
                                    prompt=spec.prompt, turn_start=_first(spec.turn_start, marks),
                                    options=spec.options, **marks))
        self.state.prune_logs(session_id, slack=PRUNE_SLACK)

    def _send(self, session_id: str, lease: SessionLease, spec: RunSpec, base: int) -> None:
        """Queue a run whose record is written; if Redis refuses, the run ends failed and the session is free."""
        try:
            lease.refresh(QUEUED_TTL)  # held for the worker until it adopts it
            self.queue_broker.send(session_id=session_id, run_id=spec.run_id, spec=spec.to_json(), base=base,
                                   lease=getattr(lease, "token", None))
        except ApiError as exc:
            log_ = self.state.log(session_id, spec.run_id, base)
            data = error_data(session_id, spec.run_id, exc)
            event_id = self.state.conclude(session_id, spec.run_id, log_, FAILED, data)
            lease.release()
            log_.append("error", data, event_id=event_id)
            raise

    def run_queued(self, session_id: str, spec: RunSpec, base: int, lease: SessionLease) -> None:
        """Run a queued turn on this (worker) thread; returns when it has its final state.

        The caller checked that the record names this run and is ours to take
        (``queue_worker.py``); the claim is atomic: a second delivery finds the
        owner set and leaves.
        """
        run = LocalRun(spec, session_id, self.state.log(session_id, spec.run_id, base), self.state, self.journal,
                       self.poll, lease, self.settings.approval_timeout)
        owner = owner_of(self._instance)
        self._local.add(run)
        claimed = self.state.update(session_id, spec.run_id, lambda r: _claim(r, owner))
        if claimed is None:
            self._local.forget(spec.run_id)
            log.info("queued run taken by another worker session=%s run=%s", session_id, spec.run_id)
            return
        self.queue_broker.claim(spec.run_id)
        if claimed.get("cancel"):
            run.request_cancel()
        log.info("queued run claimed session=%s run=%s", session_id, spec.run_id)
        self._execute(run)

    def _execute(self, run: LocalRun) -> None:
        with self.track():
            self._executor.execute(run)

    def _acquire(self, session_id: str) -> HeldLock:
        """The session's lock; a run that is just finishing gets ``FINISH_GRACE`` to let go of it."""
        deadline = time.monotonic() + FINISH_GRACE
        while True:
            try:
                return self._take(session_id)
            except SessionBusy:
                record = self.status(session_id)
                if is_active(record) or time.monotonic() >= deadline:
                    raise self._busy(session_id, record) from None
            time.sleep(0.02)

    def _take(self, session_id: str) -> HeldLock | SessionLease:
        """The session's turn lock without waiting: a Redis lease across hosts, else the session's flock."""
        if self.leases is None:
            return self.store.acquire(session_id)
        self.store.check_id(session_id)
        return self.leases.acquire(session_id, QUEUED_TTL if self.queue_broker is not None else None)

    @staticmethod
    def _busy(session_id: str, record: Record | None) -> SessionBusy:
        active = record["run_id"] if is_active(record) else None
        return SessionBusy(f"Session {session_id} is busy with another turn; follow it with GET /session/{session_id}"
                           f" (or cancel it with POST /session/{session_id}/cancel) and retry when it ends",
                           details={"session_id": session_id, "active_run_id": active},
                           headers={"Retry-After": RETRY_AFTER})

    @contextmanager
    def hold_idle(self, session_id: str) -> Iterator[HeldLock]:
        """Hold an idle session (for delete and summarize) so that no turn starts meanwhile.

        Raises:
            SessionBusy: a run has it.
        """
        with self._acquire(session_id) as lock:
            yield lock

    def _last_event_id(self, record: Record | None) -> int:
        if record is None:
            return 0
        return max(int(record.get("last_event_id") or 0), self.state.log_of(record).last_id())

    def _session_marks(self, session_id: str) -> dict[str, Any]:
        """Where the session stands before the run: what a waiting answer counts from."""
        session = self.store.load(session_id)
        return {"first_message": len(session.messages), "usage_base": accumulated(session.metadata)}

    # --- reading ----------------------------------------------------------------------

    def status(self, session_id: str) -> Record | None:
        """The session's run record; an active run whose owner is gone is marked interrupted first."""
        record = self.state.read(session_id)
        if is_active(record) and self._owner_gone(record):
            record = self._interrupt(record)
        return record

    def _owner_gone(self, record: Record) -> bool:
        owner = record.get("owner") or {}
        if owner.get("queued"):  # no worker had it: alive while its message waits in the queue
            if self.queue_broker is None or self.queue_broker.waiting(record["run_id"]):
                return self.queue_broker is None
            now = self.state.read(record["session_id"]) or {}  # a claim writes the owner, then drops the mark
            return now.get("run_id") == record["run_id"] and bool((now.get("owner") or {}).get("queued"))
        if owner.get("instance") == self._instance:
            return self._local.get(record["run_id"]) is None
        return self.state.owner_gone(record)

    def _interrupt(self, record: Record) -> Record | None:
        """Mark a run whose owner is gone interrupted; its queue goes on (if the session is free)."""
        session_id, run_id = record["session_id"], record["run_id"]
        log_ = self.state.log_of(record)
        data = interrupted_data(session_id, run_id, "owner_gone")
        event_id = self.state.conclude(session_id, run_id, log_, INTERRUPTED, data, only_if_active=True)
        if event_id is not None:
            if self.leases is not None:
                self.leases.break_(session_id, (record.get("owner") or {}).get("lease"))
            event = log_.append("error", data, event_id=event_id)
            log.warning("run interrupted session=%s run=%s owner_pid=%s", session_id, run_id,
                        (record.get("owner") or {}).get("pid"))
            self._notify(session_id, run_id, record.get("webhook"), record.get("webhook_key"), event)
            self.drain(session_id)
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
        poll = self.read_interval(ref.run_id)
        while True:
            remaining = LIVENESS_CHECK if deadline is None else min(LIVENESS_CHECK, deadline - time.monotonic())
            for event in reader.wait(remaining, poll):
                answer = self._answer_of(ref, event)
                if answer is not None:
                    return answer
            if deadline is not None and time.monotonic() >= deadline:
                return None
            self.status(ref.session_id)  # a dead owner's run gets its error event here

    def read_interval(self, run_id: str) -> float:
        """How often a reader waiting on ``run_id``'s event log must look at the file.

        Only the owner appends to a run's log; when that is this process, every
        append wakes its readers at once, so the file is read only at each
        liveness check (not 10 times a second: 500 open streams would be 5,000
        reads a second). Another process's run is polled every ``run_poll_interval``.
        """
        local = self._local.get(run_id) is not None
        return LIVENESS_CHECK if local or getattr(self.state.signal, "crosses_hosts", False) else self.poll

    def _answer_of(self, ref: RunRef, event: Event) -> dict[str, Any] | None:
        if event.type == "done":
            return event.data
        if event.type == "error":
            raise failure(event.data)
        if event.type == "approval_required":
            record = self.state.read(ref.session_id)
            if record is not None and record.get("run_id") == ref.run_id and record.get("state") == WAITING:
                return waiting_payload(self.store, record)
        return None

    def log_of(self, session_id: str, run_id: str | None = None) -> tuple[Record, EventLog]:
        """The record and event log of the session's current or last run (or of ``run_id``, while kept).

        Raises:
            NotFound: the session never ran a turn, or that run's log is gone.
        """
        record = self.status(session_id)
        if record is None:
            raise NotFound(f"Session {session_id} has not run a turn yet; send one with POST /session/reply")
        if run_id is not None and run_id != record["run_id"]:
            if not re.fullmatch(RUN_ID_PATTERN, run_id) or not self.state.has_log(session_id, run_id):
                raise NotFound(f"Run {run_id} of session {session_id} is unknown or no longer kept")
            return record, self.state.log(session_id, run_id, 0)
        return record, self.state.log_of(record)

    # --- steering ---------------------------------------------------------------------

    def cancel(self, session_id: str, reason: str = "cancel", *,
               wait: bool = True) -> tuple[Record, dict[str, Any] | None]:
        """Ask the session's run to stop at its next step and (``wait``) wait until it has, ``CANCEL_WAIT`` at most.

        Returns the record and the run's final event data (None if it has not stopped yet).

        Raises:
            NoActiveRun: nothing runs on the session.
        """
        record = self.status(session_id)
        if not is_active(record):
            raise NoActiveRun(f"Session {session_id} has no run in progress; nothing to cancel",
                              details={"session_id": session_id})
        reader = self.state.log_of(record).follow(0)  # from the start: the run may end before we look
        self.state.steer(session_id, record["run_id"],
                         lambda r: r.__setitem__("cancel", {"requested": time.time(), "reason": reason}))
        local = self._local.get(record["run_id"])
        if local is not None:
            local.request_cancel()
        deadline = time.monotonic() + (CANCEL_WAIT if wait else 0.0)
        while time.monotonic() < deadline:
            for event in reader.wait(min(LIVENESS_CHECK, deadline - time.monotonic()),
                                     self.read_interval(record["run_id"])):
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
        if self.state.steer(session_id, record["run_id"], decide) is None:
            pending = ", ".join(p["id"] for p in record["pending_approvals"]) or "none"
            raise NotFound(f"No tool call {call_id!r} waits for approval in session {session_id}; "
                           f"pending: {pending}")
        local = self._local.get(record["run_id"])
        if local is not None:
            local.wake.set()
        log.info("tool call confirmed session=%s run=%s action=%s", session_id, record["run_id"], action)
        return RunRef(session_id, record["run_id"], after)

    # --- the end of a run ---------------------------------------------------------------

    def _release(self, run: LocalRun) -> None:
        """A run has its final state: hand its session to the next queued turn, or let go of it."""
        try:
            spec = None if self.stopping.is_set() else self.queue.pop(run.session_id)
        except OSError:
            log.exception("run queue unreadable session=%s", run.session_id)
            spec = None
        if spec is None:
            run.session_lock.release()
            return
        try:
            self._launch(run.session_id, run.session_lock, spec)  # releases the lock if it cannot start
        except (ApiError, OSError):
            log.exception("queued run could not start session=%s run=%s", run.session_id, spec.run_id)

    def _ended(self, run: LocalRun, event: Event) -> None:
        self._local.forget(run.run_id)
        self._notify(run.session_id, run.run_id, run.spec.webhook, run.spec.webhook_key, event)

    def _notify(self, session_id: str, run_id: str, webhook: str | None, webhook_key: str | None,
                event: Event) -> None:
        if self.on_final is not None:
            self.on_final(session_id, run_id, webhook, webhook_key, event)

    def begin_shutdown(self) -> None:
        """The worker got SIGTERM: runs stop at their next saved step, event streams end, no new run starts.

        A step in flight gets the graceful timeout less ``SHUTDOWN_MARGIN`` to
        finish; then it is abandoned. Either way the run ends ``interrupted``
        (reason ``shutdown``) unless the turn ended on its own, and requests
        waiting for it answer at once.
        """
        self.stopping.set()
        budget = max(0.0, self.settings.graceful_timeout - SHUTDOWN_MARGIN)
        for run in self._local.all():
            run.request_stop(budget)

    def close(self) -> None:
        """Stop this process's runs now (they end ``interrupted``: reason shutdown)."""
        self.stopping.set()
        runs = self._local.all()
        for run in runs:
            run.request_stop(0.0)
            run.request_cancel(shutdown=True)
        deadline = time.monotonic() + CLOSE_WAIT
        for run in runs:
            run.finished.wait(max(0.0, deadline - time.monotonic()))
        self._local.close()
        self._pool.shutdown(wait=False)
        if runs:
            log.info("runs closed (%d stopped)", len(runs))


def _log_failure(future: Future) -> None:
    """A run's executor ends every run itself; an error escaping it is a bug to see in the log."""
    if not future.cancelled() and future.exception() is not None:
        log.error("run thread failed", exc_info=future.exception())


def queued_owner(lease: HeldLock | SessionLease) -> dict[str, Any]:
    """The owner of a run waiting in the queue: none yet, and the lease its worker adopts."""
    return {"queued": True, "heartbeat": time.time(), "lease": getattr(lease, "token", None)}


def _claim(record: Record, owner: dict[str, Any]) -> bool:
    """A worker takes a queued run: only once, and only while it is still queued."""
    if not is_active(record) or not (record.get("owner") or {}).get("queued"):
        return False
    record["owner"] = {**owner, "heartbeat": time.time(), "lease": record["owner"].get("lease")}
    return True


def _first(turn_start: int | None, marks: dict[str, Any]) -> int:
    """Where the run's turn began in the session: before this run, unless it resumes an earlier one."""
    return marks["first_message"] if turn_start is None else turn_start


def _options_json(options: TurnOptions | None) -> dict[str, Any] | None:
    return (options.to_json() or None) if options is not None else None
