"""Turns: starting a session or replying to one.

This is what the session routes call. It picks the session (creating it on
start, or the most recent one when a reply names none) and hands the turn to
the run service, which runs it in the background; the route then waits for
it, streams it, or answers 202 at once.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from goose_api.errors import BadRequest, NotFound
from goose_api.runs import RunRef, RunService
from goose_api.sessions import SessionStore, describe

log = logging.getLogger(__name__)


class TurnService:
    def __init__(self, store: SessionStore, runs: RunService, default_working_dir: str,
                 allowed_roots: tuple[str, ...] | None = None):
        self.store = store
        self.runs = runs
        self.default_working_dir = default_working_dir
        self.allowed_roots = allowed_roots

    def start(self, prompt: str, session_id: str | None = None, working_dir: str | None = None, *,
              stream: bool = False, on_created: Callable[[str], None] | None = None) -> RunRef:
        """Create a session and start its first turn; ``on_created(id)`` runs first (ownership).

        Raises:
            BadRequest: bad working_dir. Conflict: the session id is taken.
        """
        working_dir = self.check_working_dir(working_dir) if working_dir else self.default_working_dir
        session = self.store.create(session_id, working_dir, describe(prompt))
        if on_created is not None:
            on_created(session.id)
        return self.runs.start(session.id, prompt, kind="start", stream=stream)

    def reply(self, prompt: str, session_id: str | None = None, *, stream: bool = False) -> RunRef:
        """Start a turn on a session, by default the most recently active one.

        Raises:
            NotFound: no such session, or no session at all. SessionBusy: a turn runs on it.
        """
        if session_id is None:
            session_id = self.store.most_recent()
            if session_id is None:
                raise NotFound("There is no session to reply to; start one with POST /session/start")
        elif not self.store.exists(session_id):
            raise NotFound(f"Session {session_id} not found; start one with POST /session/start")
        return self.runs.start(session_id, prompt, kind="reply", stream=stream)

    def check_working_dir(self, path: str) -> str:
        """An absolute, existing directory (inside ``allowed_roots`` when set).

        Raises:
            BadRequest: anything else.
        """
        if not os.path.isabs(path):
            raise BadRequest("working_dir must be an absolute path")
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise BadRequest("working_dir must be an existing directory")
        if self.allowed_roots and not any(
                real == root or real.startswith(root.rstrip("/") + "/")
                for root in map(os.path.realpath, self.allowed_roots)):
            raise BadRequest("working_dir is outside the allowed roots")
        return real
