"""Turns waiting for a busy session: an on-disk FIFO per session.

``<data_dir>/runs/<session_id>/queue.jsonl`` holds one run spec a line
(``RunSpec.to_json``, with the time it was queued), changed only under the
session's state lock, so every worker (and a restarted server) sees the same
queue. A turn is queued by appending its line (an append-only JSON Lines file,
``storage/jsonl.py``: a line a crash tore is stepped over); taking the head
rewrites the rest atomically. At most ``limit`` turns wait per session. The
worker that ends a session's run hands the session to the queue's head; a turn
queued while the session is idle, or left behind by a crash, is started by
whoever looks next (the enqueuer, the start-up sweep). A ``queue.json`` of an
earlier version is read first and replaced by the next change.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from goose_api.errors import QueueFull
from goose_api.runs.state import RunStateStore
from goose_api.runs.worker import RunSpec
from goose_api.storage import jsonl

log = logging.getLogger(__name__)

RETRY_AFTER = "5"


def queue_full(session_id: str, limit: int) -> QueueFull:
    return QueueFull(f"Session {session_id} has {limit} turns queued, its limit; wait for one to "
                     f"run, or follow the session with GET /session/{session_id}",
                     details={"session_id": session_id, "limit": limit}, headers={"Retry-After": RETRY_AFTER})


class TurnQueue:
    def __init__(self, state: RunStateStore, limit: int):
        self.state = state
        self.limit = limit

    def items(self, session_id: str) -> list[dict[str, Any]]:
        """The queued turns, head first (read without the lock: appends are whole lines, rewrites atomic)."""
        lines = jsonl.read(self.state.data.queue(session_id))
        return [item for item in self._legacy(session_id) + lines if isinstance(item, dict)]

    def push(self, session_id: str, spec: RunSpec, *, front: bool = False) -> None:
        """Queue a turn (``front``: next in line).

        Raises:
            QueueFull: ``limit`` turns wait already.
        """
        entry = {**spec.to_json(), "queued": time.time()}
        with self.state.lock(session_id):
            items = self.items(session_id)
            if len(items) >= self.limit:
                raise queue_full(session_id, self.limit)
            if front or self.state.data.legacy_queue(session_id).exists():
                self._save(session_id, [entry, *items] if front else [*items, entry])
            else:
                jsonl.append(self.state.data.queue(session_id), entry, sync=True)

    def pop(self, session_id: str) -> RunSpec | None:
        """Take the head (hold the session's lock, so that the popped turn is started at once)."""
        with self.state.lock(session_id):
            items = self.items(session_id)
            if not items:
                return None
            self._save(session_id, items[1:])
        return RunSpec.from_json(items[0])

    def clear(self, session_id: str) -> int:
        with self.state.lock(session_id):
            count = len(self.items(session_id))
            if count:
                self._save(session_id, [])
        return count

    def sessions(self) -> list[str]:
        """Sessions with queued turns."""
        return [session_id for session_id in self.state.data.queued_sessions() if self.items(session_id)]

    def _save(self, session_id: str, items: list[dict[str, Any]]) -> None:
        jsonl.rewrite(self.state.data.queue(session_id), items)
        self.state.data.legacy_queue(session_id).unlink(missing_ok=True)

    def _legacy(self, session_id: str) -> list[Any]:
        try:
            data = json.loads(self.state.data.legacy_queue(session_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except ValueError:
            log.warning("unreadable queue.json of session=%s: its turns are dropped", session_id)
            return []
        return data if isinstance(data, list) else []
