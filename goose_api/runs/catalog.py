"""Looking after sessions as a whole: list, show (with the run's state), delete, summarize, end.

Listing entries have the shape of ``goose session list --format json``
(``id``, ``path``, ``modified`` as ``YYYY-MM-DD HH:MM:SS UTC``, ``metadata``:
the file's first line), newest first. Showing a session joins its goose file
with its run record, so a poller sees messages and run state in one answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from goose_api.agent.summarizer import Summarizer
from goose_api.auth import Client
from goose_api.conversation import TOKEN_FIELDS, accumulated_field
from goose_api.errors import NoActiveRun, SessionNotFound
from goose_api.runs.service import RunService
from goose_api.runs.state import IDLE, RunStateStore, is_active
from goose_api.sessions.access import SessionAccess

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Ended:
    """What ending a session stopped."""

    session_id: str
    cancelled: str | None   # the step the cancel stopped, if a run was going
    dropped: int            # queued turns dropped


class SessionCatalog:
    def __init__(self, access: SessionAccess, runs: RunService, state: RunStateStore, summarizer: Summarizer):
        self.access = access
        self.store = access.store
        self.runs = runs
        self.state = state
        self.summarizer = summarizer

    def list(self, client: Client, limit: int, offset: int) -> dict[str, Any]:
        """One page of the client's sessions, newest first, in goose's listing shape."""
        entries = self.store.list_ids()
        allowed = set(self.access.visible([session_id for session_id, _ in entries], client))
        entries = [entry for entry in entries if entry[0] in allowed]
        page = []
        for session_id, modified in entries[offset:offset + limit]:
            try:
                metadata = self.store.read_metadata(session_id)
            except SessionNotFound:
                continue  # deleted since the directory was read
            page.append({"id": session_id, "path": self.store.location(session_id),
                         "modified": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(modified)),
                         "metadata": metadata})
        return {"sessions": page, "total": len(entries), "limit": limit, "offset": offset}

    def describe(self, session_id: str, since: int = 0) -> dict[str, Any]:
        """The session, its run's state and its messages after the first ``since``.

        Raises:
            SessionNotFound: no such session.
        """
        session = self.store.load(session_id)
        record = self.runs.status(session_id) or {}
        meta = session.metadata
        return {
            "session_id": session.id,
            "description": meta.get("description") or "",
            "working_dir": meta.get("working_dir") or "",
            "created": session.messages[0].created if session.messages else int(session.updated),
            "updated": int(session.updated),
            "message_count": len(session.messages),
            "usage": {name: meta.get(accumulated_field(name)) for name in TOKEN_FIELDS},
            "state": record.get("state", IDLE),
            "run_id": record.get("run_id"),
            "pending_approvals": record.get("pending_approvals", []) if is_active(record) else [],
            "last_error": record.get("last_error"),
            "messages": [m.to_json() for m in session.messages[since:]],
            "queued_runs": [{"run_id": q["run_id"], "queued": q["queued"]} for q in self.runs.queue.items(session_id)],
        }

    def delete(self, session_id: str) -> None:
        """Remove the session's run state, its goose file, backups and owner, and its lock file.

        The run state goes first: a new session can take the id only once the
        file is gone, and finds nothing of this one's.

        Raises:
            SessionNotFound: no such session. SessionBusy: a run has it.
        """
        with self.runs.hold_idle(session_id) as lock:
            self.state.delete(session_id)
            self.access.delete(session_id)
            self.store.remove_lock(lock)
        log.info("session deleted id=%s", session_id)

    def summarize(self, session_id: str) -> str:
        """Replace the session's history with the model's summary (see ``agent/summarizer.py``).

        Raises:
            SessionNotFound: no such session. SessionBusy: a turn runs on it.
            BadRequest: the session has no messages. ProviderError: the provider failed (nothing changed).
        """
        with self.runs.hold_idle(session_id):
            return self.summarizer.summarize(session_id)

    def end(self, session_id: str) -> Ended:
        """Stop the session's run (if any) and drop what this worker keeps of it; the history stays."""
        cancelled = None
        dropped = self.runs.queue.clear(session_id)  # ending a session stops its queued turns too
        try:
            _, final = self.runs.cancel(session_id, reason="end")
            cancelled = (final or {}).get("cancelled")
        except NoActiveRun:
            pass  # nothing runs: nothing to stop
        with self.state.lock(session_id):
            self.state.prune_logs(session_id, keep=1)
        self.store.forget(session_id)
        log.info("session ended id=%s", session_id)
        return Ended(session_id, cancelled, dropped)
