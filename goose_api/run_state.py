"""Run state shared by every worker process through the data dir.

Layout, per session, under ``<data_dir>/runs/<session_id>/``:

- ``run.json``: the record of the current (or last) run: its id and state,
  the pending tool approvals and the decisions sent for them, a cancel
  request, the last error, and the lease (owner pid, host, instance and
  heartbeat). Written atomically (temp file + rename), read without a lock.
- ``<run_id>.events.jsonl``: the run's event log (``event_log.py``).
- ``state.lock``: the file lock every writer of the two holds.

Whoever runs a turn owns its record's lease and refreshes the heartbeat; a
run whose owner process is gone (pid dead on this host, or heartbeat older
than ``run_lease_timeout``) is reported ``interrupted`` by whoever reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock

from goose_api import atomic
from goose_api.event_log import EventLog, LogSignal
from goose_api.mcp.process import pid_alive

Record = dict[str, Any]

IDLE, RUNNING, WAITING, FAILED, INTERRUPTED = "idle", "running", "waiting_approval", "failed", "interrupted"
STATES = (IDLE, RUNNING, WAITING, FAILED, INTERRUPTED)
ACTIVE_STATES = frozenset({RUNNING, WAITING})
RECORD_VERSION = 1
LOCK_TIMEOUT = 30.0   # a state write holds the lock for milliseconds; waiting this long means a bug
LOGS_KEPT = 20        # event logs kept per session (the newest runs)
HOST = socket.gethostname()


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

    def __init__(self, data_dir: Path, signal: LogSignal, lease_timeout: float):
        self.root = Path(data_dir) / "runs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.signal = signal
        self.lease_timeout = lease_timeout

    def dir(self, session_id: str) -> Path:
        return self.root / session_id

    @contextmanager
    def lock(self, session_id: str) -> Iterator[None]:
        """Hold the session's state lock (every process, every thread)."""
        directory = self.dir(session_id)
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(directory / "state.lock"), thread_local=False)
        lock.acquire(timeout=LOCK_TIMEOUT)
        try:
            yield
        finally:
            lock.release()

    def read(self, session_id: str) -> Record | None:
        try:
            data = json.loads((self.dir(session_id) / "run.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def stamp(self, session_id: str) -> tuple[int, int] | None:
        """Changes whenever the record is rewritten (cheap to poll)."""
        try:
            st = os.stat(self.dir(session_id) / "run.json")
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def write(self, record: Record) -> None:
        """Replace the record (hold ``lock``)."""
        record["updated"] = time.time()
        atomic.write_text(self.dir(record["session_id"]) / "run.json",
                          json.dumps(record, ensure_ascii=False, indent=1) + "\n")

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
        return EventLog(self.dir(session_id) / f"{run_id}.events.jsonl", base,
                        lambda: self.lock(session_id), self.signal)

    def log_of(self, record: Record) -> EventLog:
        return self.log(record["session_id"], record["run_id"], record.get("event_base", 0))

    # --- leases ---------------------------------------------------------------------

    def owner_gone(self, record: Record) -> bool:
        """The owner of an active run is dead (pid gone on this host) or silent (stale heartbeat)."""
        owner = record.get("owner") or {}
        if owner.get("host") == HOST and isinstance(owner.get("pid"), int) and not pid_alive(owner["pid"]):
            return True
        return time.time() - float(owner.get("heartbeat") or 0) > self.lease_timeout

    # --- housekeeping ---------------------------------------------------------------

    def prune_logs(self, session_id: str, keep: int = LOGS_KEPT) -> None:
        """Drop the oldest event logs beyond ``keep`` (hold ``lock``)."""
        logs = sorted(self.dir(session_id).glob("*.events.jsonl"), key=lambda p: p.stat().st_mtime)
        for path in logs[:-keep] if keep else logs:
            path.unlink(missing_ok=True)

    def delete(self, session_id: str) -> None:
        """Forget every run of a session (its file is gone)."""
        try:
            shutil.rmtree(self.dir(session_id))
        except FileNotFoundError:
            pass  # it never ran a turn
