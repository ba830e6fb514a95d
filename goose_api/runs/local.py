"""The runs this process owns, and the watcher thread that looks after them.

Cancels and approval decisions sent to another worker arrive through the
run's record; the watcher notices them within ``run_poll_interval`` (it reads
a run's record when the shared ``steering`` counter moved, and at every
heartbeat), keeps the
owner's lease fresh (a heartbeat every ``run_heartbeat_interval``) and, during
a shutdown, abandons a step that outlives the time the shutdown allows.
"""

from __future__ import annotations

import logging
import threading
import time

from goose_api.errors import ApiError
from goose_api.runs.leases import SessionLease
from goose_api.runs.state import RunStateStore
from goose_api.runs.worker import LocalRun

log = logging.getLogger(__name__)


class LocalRuns:
    def __init__(self, state: RunStateStore, poll: float, heartbeat_interval: float):
        self.state = state
        self.poll = poll
        self.heartbeat_interval = heartbeat_interval
        self._runs: dict[str, LocalRun] = {}
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closed = threading.Event()

    def add(self, run: LocalRun) -> None:
        with self._lock:
            self._runs[run.run_id] = run
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="run-watcher", daemon=True)
                self._watcher.start()

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def get(self, run_id: str) -> LocalRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def all(self) -> list[LocalRun]:
        with self._lock:
            return list(self._runs.values())

    def close(self) -> None:
        self._closed.set()

    def _watch(self) -> None:
        next_beat, seen = 0.0, None
        while not self._closed.wait(self.poll):
            beat = time.monotonic() >= next_beat
            try:
                steered = self.state.steering.value()  # read before looking: a later change is seen next time
            except ApiError as exc:  # the backend is away a moment (a database restart): look again next time
                log.warning("run watcher cannot read the steering count: %s", exc)
                continue
            look = beat or steered != seen
            seen = steered
            for run in self.all():
                try:
                    self._look_at(run, beat, look)
                except (OSError, ValueError):
                    log.exception("run watcher failed session=%s run=%s", run.session_id, run.run_id)
                except ApiError as exc:
                    log.warning("run watcher failed session=%s run=%s: %s", run.session_id, run.run_id, exc)
            if beat:
                next_beat = time.monotonic() + self.heartbeat_interval

    def _look_at(self, run: LocalRun, beat: bool, look: bool) -> None:
        stamp = self.state.stamp(run.session_id) if look or run.seen_stamp is None else run.seen_stamp
        if stamp != run.seen_stamp:
            run.seen_stamp = stamp
            record = self.state.read(run.session_id) or {}
            if record.get("run_id") == run.run_id:
                if record.get("cancel"):
                    run.request_cancel()
                if record.get("decisions"):
                    run.wake.set()
        if run.abandon_at is not None and time.monotonic() >= run.abandon_at:
            run.request_cancel(shutdown=True)  # a stopping run's step took longer than the shutdown allows
        if beat and not run.finished.is_set():
            self.state.update(run.session_id, run.run_id,
                              lambda r: r["owner"].__setitem__("heartbeat", time.time()))
            lease = run.session_lock
            if isinstance(lease, SessionLease) and lease.is_locked and not lease.refresh():  # REDIS_URL's leases
                log.warning("run lost its session lease session=%s run=%s", run.session_id, run.run_id)
