"""Which sessions a caller may use: decided here, once per request, and nowhere else.

A session belongs to the name of the key that created it (``owners.py`` keeps
the index). A key sees, replies to and deletes only its own sessions; an admin
key sees all. A session with no recorded owner (written by the goose CLI, or
before owners were recorded) is visible to admin keys only. Someone else's
session is answered exactly like a missing one (``SessionNotFound``), so
clients cannot probe each other's ids.

The web layer asks ``check`` (or ``resolve``) before it hands a session id to
any service; services trust the ids they are given. A service that creates a
session is given its owner and creates it through ``create``, which records
the owner with it; ``discard`` undoes a creation whose turn was refused, and
``delete`` forgets the owner with the file.
"""

from __future__ import annotations

from typing import Callable, Iterable

from goose_api.auth import Client
from goose_api.errors import NotFound, SessionNotFound
from goose_api.sessions.owners import SessionOwners
from goose_api.sessions.store import Session, SessionStore


class SessionAccess:
    def __init__(self, store: SessionStore, owners: SessionOwners,
                 on_created: Callable[[str], None] | None = None):
        self.store = store
        self.owners = owners
        self.on_created = on_created  # hears of every new session's id (the run state clears what an old one left)

    # --- questions -----------------------------------------------------------------

    def check(self, session_id: str, client: Client) -> str:
        """The id of an existing session the client may use.

        Raises:
            BadRequest: a malformed id. SessionNotFound: no such session, or another key's.
        """
        self.store.check_id(session_id)
        if not self._may_use(session_id, client) or not self.store.exists(session_id):
            raise SessionNotFound(session_id)
        return session_id

    def resolve(self, session_id: str | None, client: Client) -> str:
        """The session a request names (checked), or else the client's most recently active one.

        Raises:
            BadRequest: a malformed id. NotFound: the named session is not the client's, or the client has none.
        """
        if session_id is not None:
            return self.check(session_id, client)
        for candidate in self.visible((sid for sid, _ in self.store.list_ids()), client):
            return candidate
        raise NotFound("There is no session to reply to; start one with POST /session/start")

    def visible(self, session_ids: Iterable[str], client: Client) -> list[str]:
        """The ids the client may see, in the given order."""
        if client.admin:
            return list(session_ids)
        owners = self.owners.current()
        return [sid for sid in session_ids if owners.get(sid) == client.name]

    def _may_use(self, session_id: str, client: Client) -> bool:
        return client.admin or self.owners.owner(session_id) == client.name

    # --- changes -------------------------------------------------------------------

    def create(self, session_id: str | None, working_dir: str, description: str, owner: Client) -> Session:
        """A new empty session of ``owner``'s.

        Raises:
            Conflict: a session with that id already exists.
        """
        session = self.store.create(session_id, working_dir, description)
        try:
            if self.on_created is not None:
                self.on_created(session.id)
            self.owners.claim(session.id, owner.name)
        except BaseException:
            self.store.discard(session)
            raise
        return session

    def discard(self, session: Session) -> None:
        """Undo ``create`` (its turn was refused): no empty session is left behind."""
        if self.store.discard(session):
            self.owners.forget(session.id)

    def delete(self, session_id: str) -> None:
        """Remove the session's file and its owner.

        Raises:
            SessionNotFound: it is gone already.
        """
        self.store.delete(session_id)
        self.owners.forget(session_id)
