"""Turns waiting for a busy session: an on-disk FIFO per session.

``<data_dir>/runs/<session_id>/queue.json`` is a list of run specs (``RunSpec.to_json``)
with the time each was queued, rewritten atomically under the session's state
lock, so every worker (and a restarted server) sees the same queue. The worker
that ends a session's run hands the session to the queue's head; a turn queued
while the session is idle, or left behind by a crash, is started by whoever
looks next (the enqueuer, the start-up sweep).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from goose_api.runs.state import RunStateStore
from goose_api.runs.worker import RunSpec
from goose_api.storage import atomic


class TurnQueue:
    def __init__(self, state: RunStateStore):
        self.state = state

    def _path(self, session_id: str) -> Path:
        return self.state.data.queue(session_id)

    def items(self, session_id: str) -> list[dict[str, Any]]:
        """The queued turns, head first (read without the lock: the file is replaced atomically)."""
        try:
            data = json.loads(self._path(session_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    def push(self, session_id: str, spec: RunSpec, *, front: bool = False) -> None:
        entry = {**spec.to_json(), "queued": time.time()}
        with self.state.lock(session_id):
            items = self.items(session_id)
            self._save(session_id, [entry, *items] if front else [*items, entry])

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
        if items:
            atomic.write_text(self._path(session_id), json.dumps(items, ensure_ascii=False) + "\n")
        else:
            self._path(session_id).unlink(missing_ok=True)
