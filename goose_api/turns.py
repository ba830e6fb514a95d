"""Turns: starting a session or replying to one, and the blocking answer.

This is what the session routes call. It picks the session (creating it on
start, or the most recent one when a reply names none), holds the session's
lock for the turn, drives the agent and turns its events into the answer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Iterator

from goose_api.agent import Agent
from goose_api.errors import ApiError, BadRequest, NotFound
from goose_api.events import TurnFinished
from goose_api.sessions import SessionStore, describe

log = logging.getLogger(__name__)


@dataclass
class TurnResult:
    session_id: str
    finished: TurnFinished

    def payload(self, message: str) -> dict[str, Any]:
        body = {
            "status": self.finished.status,
            "message": message,
            "session_id": self.session_id,
            "response": self.finished.response,
            "messages": [m.to_json() for m in self.finished.messages],
            "usage": self.finished.usage.to_json(),
        }
        if self.finished.warnings:
            body["warnings"] = self.finished.warnings
        return body


class TurnService:
    def __init__(self, store: SessionStore, agent: Agent, default_working_dir: str,
                 allowed_roots: tuple[str, ...] | None = None,
                 track: Callable[[], ContextManager[Any]] = nullcontext):
        self.store = store
        self.agent = agent
        self.default_working_dir = default_working_dir
        self.allowed_roots = allowed_roots
        self.track = track  # held for each turn: the active-runs gauge

    def start(self, prompt: str, session_id: str | None = None, working_dir: str | None = None,
              on_created: Callable[[str], None] | None = None) -> TurnResult:
        """Create a session and run its first turn; ``on_created(id)`` runs before the turn (ownership).

        Raises:
            BadRequest: bad working_dir. Conflict: the session id is taken.
            ProviderError: the provider failed (the session and prompt are saved).
        """
        working_dir = self.check_working_dir(working_dir) if working_dir else self.default_working_dir
        session = self.store.create(session_id, working_dir, describe(prompt))
        if on_created is not None:
            on_created(session.id)
        return self._run(session.id, prompt)

    def reply(self, prompt: str, session_id: str | None = None) -> TurnResult:
        """Run a turn on a session, by default the most recently active one.

        Raises:
            NotFound: no such session, or no session at all.
        """
        if session_id is None:
            session_id = self.store.most_recent()
            if session_id is None:
                raise NotFound("There is no session to reply to; start one with POST /session/start")
        elif not self.store.exists(session_id):
            raise NotFound(f"Session {session_id} not found; start one with POST /session/start")
        return self._run(session_id, prompt)

    def events(self, session_id: str, prompt: str, *, stream: bool = False) -> Iterator[Any]:
        """The agent's events for one turn, with the session held for the whole turn."""
        with self.store.lock(session_id), self.track():
            session = self.store.load(session_id)
            yield from self.agent.reply(session, prompt, stream=stream)

    def _run(self, session_id: str, prompt: str) -> TurnResult:
        finished = None
        try:
            for event in self.events(session_id, prompt):
                if isinstance(event, TurnFinished):
                    finished = event
        except ApiError as exc:
            exc.details.setdefault("session_id", session_id)
            raise
        assert finished is not None, "the agent always ends a turn with TurnFinished"
        return TurnResult(session_id, finished)

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
