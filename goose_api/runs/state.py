"""Run state shared by every worker process through the data dir.

Layout, per session, under ``<data_dir>/runs/<session_id>/``:

- ``run.json``: the record of the current (or last) run: its id and state,
  the pending tool approvals and the decisions sent for them, a cancel
  request, the last error, and the lease (owner pid, host, instance and
  heartbeat). Written atomically (temp file + rename), read without a lock.
- ``<run_id>.events.jsonl``: the run's event log (``event_log.py``).
- ``state.lock``: the file lock every writer of the two holds.
- ``journal.jsonl``: every tool call's steps (``journal.py``); ``queue.json``:
  turns waiting for the session (``run_queue.py``).

Whoever runs a turn owns its record's lease and refreshes the heartbeat; a
run whose owner process is gone (pid dead on this host, or heartbeat older
than ``run_lease_timeout``) is reported ``interrupted`` by whoever reads it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from goose_api.runs.event_log import EventLog, LogSignal
from goose_api.storage import atomic, flock, process
from goose_api.storage.change_counter import ChangeCounter
from goose_api.storage.data_dir import DataDir

Record = dict[str, Any]

IDLE, RUNNING, WAITING, FAILED, INTERRUPTED = "idle", "running", "waiting_approval", "failed", "interrupted"
STATES = (IDLE, RUNNING, WAITING, FAILED, INTERRUPTED)
ACTIVE_STATES = frozenset({RUNNING, WAITING})
RECORD_VERSION = 1
LOCK_TIMEOUT = 30.0   # a state write holds the lock for milliseconds; waiting this long means a bug
LOGS_KEPT = 20        # event logs kept per session (the newest runs)
PRUNE_SLACK = 10      # pruned in batches: listed on every run, pruned once this many more piled up

log = logging.getLogger(__name__)


def owner_of(instance: str) -> dict[str, Any]:
    """This process as a run's owner: its identity (``storage/process.py``) and the RunService instance."""
    return {**process.identity(), "instance": instance}


def is_active(record: Record | None) -> bool:
    return record is not None and record.get("state") in ACTIVE_STATES


def new_record(session_id: str, run_id: str, owner: dict[str, Any], **fields: Any) -> Record:
    """The record of a run about to start (state ``running``)."""
    now = time.time()
    return {"version": RECORD_VERSION, "session_id": session_id, "run_id": run_id, "state": RUNNING,
            "started": now, "updated": now, "finished": None, "owner": {**owner, "heartbeat": now},
            "pending_approvals": [], "decisions": {}, "cancel": None,
            "last_error": None, "outcome": None, **fields}


class RunStateStore:
    """Run records and event logs, one directory per session."""

    def __init__(self, data: DataDir, signal: LogSignal, lease_timeout: float, steering: Any = None):
        self.data = data
        data.runs.mkdir(parents=True, exist_ok=True)
        self.signal = signal
        self.lease_timeout = lease_timeout
        # bumped by ``steer``; across hosts a Redis counter (``signals.RedisChangeCounter``)
        self.steering = steering if steering is not None else ChangeCounter(data.steering_changes)

    @contextmanager
    def lock(self, session_id: str) -> Iterator[None]:
        """Hold the session's state lock (every process, every thread)."""
        with flock.acquire(self.data.run_state_lock(session_id), timeout=LOCK_TIMEOUT):
            yield

    def read(self, session_id: str) -> Record | None:
        try:
            data = json.loads(self.data.run_record(session_id).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:  # emptied by a machine crash between its write and the disk flush
            log.warning("unreadable run record session=%s: treated as no run", session_id)
            return None
        return data if isinstance(data, dict) else None

    def stamp(self, session_id: str) -> tuple[int, int] | None:
        """Changes whenever the record is rewritten (cheap to poll)."""
        try:
            st = os.stat(self.data.run_record(session_id))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def write(self, record: Record) -> None:
        """Replace the record (hold ``lock``).

        Not fsynced: the record describes live processes. A process that dies
        (kill -9, OOM) leaves it in the page cache for the sweep to find; after
        the machine itself went down, no run survived anyway, and a record older
        by a step still ends ``interrupted`` or idle, never ``running``. What must
        reach the disk first, the journal's tool steps and the goose file, is fsynced.
        """
        record["updated"] = time.time()
        atomic.write_text(self.data.run_record(record["session_id"]),
                          json.dumps(record, ensure_ascii=False) + "\n", sync=False)

    def update(self, session_id: str, run_id: str, change: Callable[[Record], Any]) -> Record | None:
        """Apply ``change`` to the record of ``run_id`` under the lock and save it.

        Returns the saved record, or None when the record is another run's (a
        newer run replaced it) or ``change`` returned False (nothing to save).
        """
        with self.lock(session_id):
            record = self.read(session_id)
            if record is None or record.get("run_id") != run_id or change(record) is False:
                return None
            self.write(record)
            return record

    def steer(self, session_id: str, run_id: str, change: Callable[[Record], Any]) -> Record | None:
        """``update`` with a cancel or a decision for the run's owner, whichever worker it is.

        Owners look at their runs' records only when ``steering`` moved (one
        memory read per poll), not with a ``stat`` per run ten times a second.
        """
        record = self.update(session_id, run_id, change)
        if record is not None:
            self.steering.bump()
        return record

    def conclude(self, session_id: str, run_id: str, log: EventLog, state: str, data: dict[str, Any], *,
                 only_if_active: bool = False) -> int | None:
        """Write a run's final state and reserve the id of its terminal event (``data``).

        The caller appends that event with the returned id, possibly after
        letting go of the session: the id is taken now, so a run started in
        between numbers its events after it. None when the record is another
        run's (or, with ``only_if_active``, already final): nothing was written.
        """
        with self.lock(session_id):
            record = self.read(session_id)
            if record is None or record.get("run_id") != run_id or (only_if_active and not is_active(record)):
                return None
            event_id = log.next_id()
            record.update(state=state, finished=time.time(), outcome=data["status"], pending_approvals=[],
                          decisions={}, last_event_id=event_id,
                          last_error=data if data["status"] == "error" else None)
            self.write(record)
            return event_id

    def log(self, session_id: str, run_id: str, base: int) -> EventLog:
        return EventLog(self.data.run_events(session_id, run_id), base,
                        lambda: self.lock(session_id), self.signal, key=f"{session_id}/{run_id}")

    def has_log(self, session_id: str, run_id: str) -> bool:
        """Whether the run's event log is still kept."""
        return self.data.run_events(session_id, run_id).is_file()

    def log_of(self, record: Record) -> EventLog:
        return self.log(record["session_id"], record["run_id"], record.get("event_base", 0))

    # --- leases ---------------------------------------------------------------------

    def owner_gone(self, record: Record) -> bool:
        """The owner of an active run is dead (pid gone on this host) or silent (stale heartbeat)."""
        owner = record.get("owner") or {}
        if process.is_gone(owner):
            return True
        return time.time() - float(owner.get("heartbeat") or 0) > self.lease_timeout

    # --- housekeeping ---------------------------------------------------------------

    def prune_logs(self, session_id: str, keep: int = LOGS_KEPT, slack: int = 0) -> None:
        """Drop the oldest event logs beyond ``keep`` (hold ``lock``).

        With ``slack`` (every run's start) it only lists the directory until
        ``slack`` more logs than ``keep`` piled up, then prunes them at once.
        """
        logs = self.data.run_event_logs(session_id)
        if len(logs) <= keep + slack:
            return
        logs.sort(key=lambda p: p.stat().st_mtime)
        for path in logs[:-keep] if keep else logs:
            path.unlink(missing_ok=True)

    def sessions(self) -> list[str]:
        """The sessions with a run record, sorted."""
        return self.data.run_sessions()

    def exclusive(self, name: str) -> FileLock | None:
        """A job lock one process of the installation holds at a time (``auto_resume``); None: taken."""
        lock = FileLock(str(self.data.job_lock(name)), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def delete(self, session_id: str) -> None:
        """Forget every run of a session (its file is gone)."""
        try:
            shutil.rmtree(self.data.run_dir(session_id))
        except FileNotFoundError:
            pass  # it never ran a turn
