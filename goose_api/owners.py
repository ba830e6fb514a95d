"""Who owns each session: a side index in the data dir, so the goose file stays goose's.

A session belongs to the name of the key that started it. A key sees, replies
to and deletes only its own sessions; an admin key sees all. A session with
no recorded owner (written by the goose CLI, or before owners were recorded)
is visible to admin keys only. Someone else's session is answered exactly
like a missing one (404), so clients cannot probe each other's ids.

Every session endpoint goes through this module before touching a session:

    owners.check(session_id, client)          # NotFound unless the client may use it
    owners.visible(session_ids, client)       # filter a listing
    owners.resolve(session_id, client, ids)   # a named session (checked) or the newest visible one
    owners.claim(session_id, client)          # right after creating a session
    owners.forget(session_id)                 # after deleting it

The index is ``<data_dir>/owners.json`` (``{session_id: key name}``), written
atomically under a file lock so every worker sees the same owners; reads are
cached until the file changes.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from filelock import FileLock

from goose_api import atomic
from goose_api.auth import Client
from goose_api.errors import NotFound


class SessionOwners:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "owners.json"
        self._cache_lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._owners: dict[str, str] = {}

    # --- questions -----------------------------------------------------------------

    def owner(self, session_id: str) -> str | None:
        return self._read().get(session_id)

    def may_use(self, session_id: str, client: Client) -> bool:
        return client.admin or self.owner(session_id) == client.name

    def check(self, session_id: str, client: Client) -> None:
        """Raises: NotFound when the session is not the client's (the same answer as for a missing one)."""
        if not self.may_use(session_id, client):
            raise NotFound(f"Session {session_id} not found; start one with POST /session/start")

    def visible(self, session_ids: Iterable[str], client: Client) -> list[str]:
        """The ids the client may see, in the given order."""
        ids = list(session_ids)
        if client.admin:
            return ids
        owners = self._read()
        return [sid for sid in ids if owners.get(sid) == client.name]

    def resolve(self, session_id: str | None, client: Client, newest_first: Callable[[], Iterable[str]]) -> str:
        """The session a request names (checked), or the client's most recently active one.

        Raises:
            NotFound: the named session is not the client's, or the client has none.
        """
        if session_id is not None:
            self.check(session_id, client)
            return session_id
        for sid in self.visible(newest_first(), client):
            return sid
        raise NotFound("There is no session to reply to; start one with POST /session/start")

    # --- changes -------------------------------------------------------------------

    def claim(self, session_id: str, client: Client) -> None:
        """Record the client as the owner of a session it just created."""
        self._update(lambda owners: owners.__setitem__(session_id, client.name))

    def forget(self, session_id: str) -> None:
        self._update(lambda owners: owners.pop(session_id, None))

    def _update(self, change: Callable[[dict[str, str]], Any]) -> None:
        with FileLock(str(self.path) + ".lock"):  # a lock object per call: safe after fork
            owners = dict(self._read())
            change(owners)
            atomic.write_json(self.path, owners)

    # --- reading -------------------------------------------------------------------

    def _read(self) -> dict[str, str]:
        with self._cache_lock:
            return self._load()

    def _load(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._owners = None, {}
            return self._owners
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self._owners = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
            self._stamp = stamp
        return self._owners
