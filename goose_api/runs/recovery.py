"""Finding runs whose owner is gone, without waiting for someone to look at their session.

Every worker sweeps the data dir when it starts and then every
``run_lease_timeout / 2`` seconds (a daemon thread): each run record whose
owner process is dead (or whose heartbeat is stale) becomes ``interrupted``,
so no run stays ``running`` after a crash even if nobody reads its session;
queued turns of sessions left free by a crash start; expired idempotency keys
are deleted. With ``auto_resume: true`` the first sweep of the one worker that
gets the run store's ``auto_resume`` lock also resumes every interrupted run it finds.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from goose_api.errors import ApiError
from goose_api.runs.service import RunService
from goose_api.runs.state import INTERRUPTED

log = logging.getLogger(__name__)


class RunRecovery:
    def __init__(self, runs: RunService, *, auto_resume: bool, interval: float,
                 housekeeping: tuple[Callable[[], object], ...] = ()):
        self.runs = runs
        self.auto_resume = auto_resume
        self.interval = interval
        self.housekeeping = housekeeping
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sweep now in the background, then every ``interval`` seconds."""
        self._thread = threading.Thread(target=self._loop, name="run-sweeper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _loop(self) -> None:
        first = True
        while not self._closed.is_set():
            try:
                self.sweep(resume=first and self.auto_resume)
                for job in self.housekeeping:
                    job()
            except (OSError, ValueError, ApiError):
                log.exception("run sweep failed")
            first = False
            self._closed.wait(self.interval)

    def sweep(self, resume: bool = False) -> list[str]:
        """Mark runs of dead owners interrupted, start orphaned queues; returns the interrupted sessions."""
        interrupted = []
        for session_id in self.runs.state.sessions():
            if self._closed.is_set():
                continue
            record = self.runs.status(session_id)  # an active run of a dead owner is interrupted here
            if record is not None and record.get("state") == INTERRUPTED:
                interrupted.append(session_id)
        if resume and interrupted:
            self._resume_all(interrupted)
        for session_id in self.runs.queue.sessions():
            self.runs.drain(session_id)
        return interrupted

    def _resume_all(self, session_ids: list[str]) -> None:
        """Resume interrupted runs: one worker does it (the others find the lock taken)."""
        lock = self.runs.state.exclusive("auto_resume")
        if lock is None:
            return
        try:
            for session_id in session_ids:
                try:
                    ref = self.runs.resume(session_id)
                    log.info("run auto-resumed session=%s run=%s", session_id, ref.run_id)
                except ApiError as exc:  # busy, resumed by someone else meanwhile, or stopping
                    log.info("run not auto-resumed session=%s: %s", session_id, exc.code)
        finally:
            lock.release()
