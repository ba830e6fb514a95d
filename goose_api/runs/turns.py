"""Turns: starting a session or replying to one.

This is what the session routes call, with a session id the web layer has
checked (``sessions/access.py``). A start creates the session for its owner and
hands the turn to the run service, which runs it in the background; a start
the run service refuses (busy, stopping) leaves no session behind. The route
then waits for the turn, streams it, or answers 202 at once.

A reply to a busy session follows its ``if_busy``: ``reject`` (409, the
default), ``enqueue`` (the turn waits in the session's on-disk queue and runs
after the current one) or ``interrupt`` (the turn goes first in the queue and
the current run is cancelled; the session passes straight to it).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Sequence

from goose_api.agent.options import TurnOptions
from goose_api.auth import Client
from goose_api.conversation import Message
from goose_api.errors import BadRequest, NoActiveRun, SessionBusy
from goose_api.runs.service import CANCEL_WAIT, RunRef, RunService
from goose_api.sessions.access import SessionAccess
from goose_api.sessions.store import describe

log = logging.getLogger(__name__)

REJECT, ENQUEUE, INTERRUPT = "reject", "enqueue", "interrupt"
IF_BUSY = (REJECT, ENQUEUE, INTERRUPT)  # what a reply to a busy session does


@dataclass(frozen=True)
class Queued:
    """A turn waiting in its session's queue (or not started yet after an interrupt)."""

    session_id: str
    run_id: str


class TurnService:
    def __init__(self, access: SessionAccess, runs: RunService, default_working_dir: str,
                 allowed_roots: tuple[str, ...] | None = None, private: tuple[str, ...] = ()):
        self.access = access
        self.runs = runs
        self.default_working_dir = default_working_dir
        self.allowed_roots = allowed_roots
        self.private = tuple(os.path.realpath(path) for path in private)  # never a working dir, nor inside one

    def start(self, prompt: str, owner: Client, session_id: str | None = None, working_dir: str | None = None, *,
              stream: bool = False, webhook: str | None = None, history: Sequence[Message] = (),
              options: TurnOptions | None = None) -> RunRef:
        """Create a session of ``owner``'s and start its first turn (for ``owner``'s key).

        ``history``: earlier messages the session starts with (a conversation
        that began elsewhere: the dialects seed a session with it).

        Raises:
            BadRequest: bad working_dir. Conflict: the session id is taken.
            SessionBusy, ServerStopping: the run service refused the turn (the session is discarded).
        """
        working_dir = self.check_working_dir(working_dir, confined=not owner.admin) if working_dir \
            else self.default_working_dir
        session = self.access.create(session_id, working_dir, describe(prompt), owner)
        try:
            if history:
                self.access.store.append(session, *history)
            return self.runs.start(session.id, prompt, kind="start", stream=stream, webhook=webhook, options=options,
                                   client=owner.name)
        except BaseException:
            self.access.discard(session)
            raise

    def reply(self, prompt: str, session_id: str, *, stream: bool = False, if_busy: str = REJECT,
              webhook: str | None = None, options: TurnOptions | None = None,
              client: str | None) -> RunRef | Queued:
        """Start a turn on a session (see ``if_busy``) for the key named ``client``.

        Raises:
            SessionNotFound: the session is gone. SessionBusy: a turn runs on it (``reject``).
        """
        try:
            return self.runs.start(session_id, prompt, kind="reply", stream=stream, webhook=webhook, options=options,
                                   client=client)
        except SessionBusy:
            if if_busy == REJECT:
                raise
        if if_busy == ENQUEUE:
            return Queued(session_id, self.runs.enqueue(session_id, prompt, stream=stream, webhook=webhook,
                                                        options=options, client=client))
        run_id = self.runs.enqueue(session_id, prompt, front=True, stream=stream, webhook=webhook, options=options,
                                   client=client)
        try:
            self.runs.cancel(session_id, reason="interrupt")
        except NoActiveRun:
            self.runs.drain(session_id)  # it ended meanwhile: ours is next
        log.info("turn interrupts session=%s run=%s", session_id, run_id)
        return self._started(session_id, run_id, CANCEL_WAIT) or Queued(session_id, run_id)

    def _started(self, session_id: str, run_id: str, timeout: float) -> RunRef | None:
        """A queued run once it has started (None if it has not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.runs.status(session_id) or {}
            if record.get("run_id") == run_id:
                return RunRef(session_id, run_id, int(record.get("event_base") or 0))
            events = self.runs.state.log(session_id, run_id, 0).read()
            if events:  # it ran already, and the next one took the record
                return RunRef(session_id, run_id, events[0].id - 1)
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.runs.poll)

    def check_working_dir(self, path: str, *, confined: bool = False) -> str:
        """An absolute, existing directory (inside ``allowed_roots`` when set), not a private one of the server's.

        ``confined`` (a key without admin): inside ``allowed_roots``, or when that is unset inside the
        default working dir, so such a key cannot make the developer tools work on ``/`` or ``/etc``.

        Raises:
            BadRequest: anything else.
        """
        if not os.path.isabs(path):
            raise BadRequest("working_dir must be an absolute path")
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise BadRequest("working_dir must be an existing directory")
        if self.allowed_roots and not any(_inside(real, root) for root in map(os.path.realpath, self.allowed_roots)):
            raise BadRequest("working_dir is outside the allowed roots")
        if confined and not self.allowed_roots and not _inside(real, os.path.realpath(self.default_working_dir)):
            raise BadRequest(f"working_dir must be inside {self.default_working_dir} (the default working dir) for "
                             "a key without admin, unless allowed_roots says otherwise")
        if any(_inside(real, private) for private in self.private):
            raise BadRequest("working_dir is inside the server's data or sessions dir; choose another directory")
        return real


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
