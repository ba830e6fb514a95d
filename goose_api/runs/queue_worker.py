"""What a worker process does with one queued message: run the turn, finish a dead worker's, or leave.

A message names a run (``broker.py``). The run's record decides:

- the record names another run (a newer turn, or the session was deleted):
  the message is stale, nothing to do;
- the run is queued (no owner yet): claim it and run it on this thread;
- the run has a live owner (a message delivered twice): leave it to that owner;
- the run's owner is gone (a worker killed mid-turn whose message Dramatiq
  put back on the queue), or the run ended ``interrupted`` (found dead by a
  reader, or stopped by a worker's shutdown): resume it, as
  ``POST /session/<id>/resume`` would. The journal decides what the resume
  may do: a tool call that had started is never run again silently, and no
  message already saved is saved again.

A worker that stops (SIGTERM: a deploy, a restart) lets each run's step in
flight finish, ends the run ``interrupted`` at a saved step and queues its
message again, so another worker resumes it.
"""

from __future__ import annotations

import logging
from typing import Any

from goose_api.errors import ApiError, ServerStopping
from goose_api.runs.service import RunService
from goose_api.runs.state import INTERRUPTED, is_active
from goose_api.runs.worker import RunSpec

log = logging.getLogger(__name__)

PASS_ON_DELAY = 1.0  # seconds before a passed-on message is due: the stopping worker's consumers let go first


class QueueWorker:
    def __init__(self, runs: RunService):
        self.runs = runs

    def handle(self, session_id: str, run_id: str, spec: dict[str, Any], base: int, lease: str | None) -> None:
        """The Dramatiq actor: returns (and the message is acknowledged) once the run has its final state."""
        runs = self.runs
        if runs.stopping.is_set():  # taken while this worker stops: another worker gets it
            self._pass_on(session_id=session_id, run_id=run_id, spec=spec, base=base, lease=lease)
            return
        record = runs.state.read(session_id)
        if record is None or record.get("run_id") != run_id:
            runs.queue_broker.claim(run_id)
            log.info("queued run superseded session=%s run=%s", session_id, run_id)
            return
        if is_active(record) and (record.get("owner") or {}).get("queued"):
            runs.run_queued(session_id, RunSpec.from_json(spec), base, runs.leases.adopt(session_id, lease))
            self._pass_on_if_stopped(session_id, run_id, spec, base, lease)
            return
        record = runs.status(session_id)  # a dead owner's run becomes interrupted here
        if record is None or record.get("run_id") != run_id or is_active(record):
            log.info("queued run has a live owner session=%s run=%s", session_id, run_id)
            return
        runs.queue_broker.claim(run_id)
        if record.get("state") == INTERRUPTED:
            self._resume(session_id, run_id)

    def _resume(self, session_id: str, run_id: str) -> None:
        try:
            ref = self.runs.resume(session_id)
        except ServerStopping:  # this worker began to stop meanwhile: the message goes on to another
            self._pass_on(session_id=session_id, run_id=run_id, spec={}, base=0, lease=None)
            return
        except ApiError as exc:  # resumed meanwhile by a request, or a new turn took the session
            log.info("interrupted run not resumed session=%s run=%s: %s", session_id, run_id, exc.code)
            return
        log.info("interrupted run resumed by a worker session=%s run=%s as=%s", session_id, run_id, ref.run_id)

    def _pass_on_if_stopped(self, session_id: str, run_id: str, spec: dict[str, Any], base: int,
                            lease: str | None) -> None:
        """A run this worker's shutdown interrupted goes back on the queue: another worker resumes it."""
        if not self.runs.stopping.is_set():
            return
        record = self.runs.state.read(session_id) or {}
        if record.get("run_id") == run_id and record.get("state") == INTERRUPTED:
            self._pass_on(session_id=session_id, run_id=run_id, spec=spec, base=base, lease=lease)

    def _pass_on(self, **message: Any) -> None:
        """Queue the message again, a moment later: a worker that is not stopping takes it."""
        try:
            self.runs.queue_broker.send(delay=PASS_ON_DELAY, **message)
            log.info("run queued for another worker session=%s run=%s", message["session_id"], message["run_id"])
        except ApiError:
            log.warning("run not queued again session=%s run=%s: resume it by hand", message["session_id"],
                        message["run_id"])
