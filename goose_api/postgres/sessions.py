"""Sessions in PostgreSQL: goose's metadata as a row, each message a JSONB row of its own.

Saving a message inserts its row and updates the session's row (message count,
tokens, version): the cost does not grow with the history. A process keeps
parsed sessions in a small cache and re-reads one only when its ``version``
moved (another process saved it). Exports still give goose's JSONL, built from
the rows (``sessions.store.to_jsonl``). The turn lock is a lease row
(``session_locks``) its holder's process keeps fresh: a holder that died on
this host is seen at once, one on another host when its lease runs out.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping

from goose_api.conversation import Message, MessageFormatError
from goose_api.errors import Conflict, SessionBusy, SessionNotFound
from goose_api.postgres.db import Database, jsonb
from goose_api.sessions.store import (
    Session,
    SessionCorrupt,
    SessionStore,
    new_metadata,
    to_jsonl,
)
from goose_api.storage import process

log = logging.getLogger(__name__)

PREFIX = "postgresql:sessions/"


GOOSE_ORDER = tuple(new_metadata(""))  # goose's metadata keys, in the order its files have them


def jsonb_ordered(value: Any) -> Any:
    """``value`` as JSONB gives it back: every object's keys in its order (shorter first, then bytewise),
    and NUL characters (which JSONB cannot hold; a tool may print them) as U+FFFD."""
    if isinstance(value, dict):
        return {_text(key): jsonb_ordered(value[key])
                for key in sorted(value, key=lambda k: (len(_text(k).encode()), _text(k).encode()))}
    if isinstance(value, list):
        return [jsonb_ordered(item) for item in value]
    return _text(value) if isinstance(value, str) else value


def without_nul(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata with NUL characters in its strings as U+FFFD (its key order kept)."""
    return {key: _text(value) if isinstance(value, str) else value for key, value in metadata.items()}


def _text(value: str) -> str:
    return value.replace("\0", "\ufffd") if "\0" in value else value


def as_stored(messages: Iterable[Message]) -> None:
    """Give messages about to be saved the key order they come back with, in place (identity kept), so a
    session reads, answers and exports the same whether this process saved it or loaded it."""
    for message in messages:
        message.content[:] = jsonb_ordered(message.content)


def goose_ordered(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata in goose's key order (JSONB keeps its own), unknown keys after."""
    return {**{key: metadata.get(key) for key in GOOSE_ORDER}, **metadata}


class PgSessionStore:
    """``SessionStorage`` over the ``sessions`` and ``messages`` tables."""

    check_id = staticmethod(SessionStore.check_id)
    _candidate_ids = SessionStore._candidate_ids
    _next_generated_id = SessionStore._next_generated_id

    def __init__(self, db: Database, locks: "PgSessionLocks", cache_size: int = 128):
        self.db = db
        self.locks = locks
        self._cache: OrderedDict[str, Session] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._id_base, self._id_next = "", 1

    def location(self, session_id: str) -> str:
        return PREFIX + self.check_id(session_id)

    def exists(self, session_id: str) -> bool:
        return self.db.fetchone("SELECT 1 FROM sessions WHERE id = %s", (self.check_id(session_id),)) is not None

    def create(self, session_id: str | None, working_dir: str, description: str = "") -> Session:
        metadata = without_nul(new_metadata(working_dir, description))
        for candidate in self._candidate_ids(session_id):
            now = time.time()
            inserted = self.db.execute(
                "INSERT INTO sessions (id, metadata, created, updated) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING", (candidate, jsonb(metadata), now, now))
            if not inserted:
                if session_id is not None:
                    raise Conflict(f"Session {session_id} already exists; continue it with POST /session/reply")
                continue
            session = Session(candidate, Path(PREFIX + candidate), metadata, stamp=(1, 0, int(now * 1e9)))
            self._remember(session)
            log.info("session created id=%s", candidate)
            return session
        raise Conflict("Could not allocate a session id; try again")

    def load(self, session_id: str) -> Session:
        row = self.db.fetchone("SELECT version, updated FROM sessions WHERE id = %s", (self.check_id(session_id),))
        if row is None:
            self._forget(session_id)
            raise SessionNotFound(session_id)
        stamp = (row[0], 0, int(row[1] * 1e9))
        with self._cache_lock:
            cached = self._cache.get(session_id)
            if cached is not None and cached.stamp == stamp:
                self._cache.move_to_end(session_id)
                return cached
        session = self._read(session_id)
        self._remember(session)
        return session

    def _read(self, session_id: str) -> Session:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT metadata, version, updated FROM sessions WHERE id = %s",
                               (session_id,)).fetchone()
            if row is None:
                raise SessionNotFound(session_id)
            rows = conn.execute("SELECT position, message FROM messages WHERE session_id = %s ORDER BY position",
                                (session_id,)).fetchall()
        messages = []
        for position, raw in rows:
            try:
                messages.append(Message.from_json(raw))
            except MessageFormatError as exc:
                raise SessionCorrupt(f"Session {session_id} cannot be read: message {position + 1}: {exc}") from None
        return Session(session_id, Path(PREFIX + session_id), goose_ordered(row[0]), messages,
                       stamp=(row[1], 0, int(row[2] * 1e9)))

    def save(self, session: Session, durable: bool = True) -> None:
        """Write the session's metadata (its messages are rows already saved)."""
        self._write_head(session, ())

    def append(self, session: Session, *messages: Message) -> None:
        as_stored(messages)
        start = len(session.messages)
        session.messages.extend(messages)
        self._write_head(session, [(start + i, m) for i, m in enumerate(messages)])

    def replace_messages(self, session: Session, messages: list[Message]) -> None:
        as_stored(messages)
        session.messages = list(messages)
        with self.db.transaction():
            self.db.execute("DELETE FROM messages WHERE session_id = %s", (session.id,))
            self._write_head(session, list(enumerate(session.messages)))

    def _write_head(self, session: Session, rows: Iterable[tuple[int, Message]]) -> None:
        session.metadata["message_count"] = len(session.messages)
        session.metadata = without_nul(session.metadata)
        now = time.time()
        with self.db.transaction(durable=True) as conn:
            rows = list(rows)
            if rows:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO messages (session_id, position, message) VALUES (%s, %s, %s)",
                                    [(session.id, position, jsonb(m.to_json())) for position, m in rows])
            found = conn.execute("UPDATE sessions SET metadata = %s, updated = %s, version = version + 1 "
                                 "WHERE id = %s RETURNING version", (jsonb(session.metadata), now, session.id)).fetchone()
        if found is None:
            raise SessionNotFound(session.id)
        session.stamp = (found[0], 0, int(now * 1e9))
        self._remember(session)

    def delete(self, session_id: str) -> None:
        """Remove the session, its messages and its backups."""
        with self.db.transaction(durable=True):
            if not self.db.execute("DELETE FROM sessions WHERE id = %s", (self.check_id(session_id),)):
                raise SessionNotFound(session_id)
            self.db.execute("DELETE FROM session_backups WHERE session_id = %s", (session_id,))
        self._forget(session_id)

    def discard(self, session: Session) -> bool:
        """Delete a session just created, unless someone saved it since; True if deleted."""
        version = session.stamp[0] if session.stamp else 1
        deleted = self.db.execute("DELETE FROM sessions WHERE id = %s AND version = %s", (session.id, version))
        self._forget(session.id)
        if deleted:
            log.info("session discarded id=%s", session.id)
        return bool(deleted)

    def forget(self, session_id: str) -> None:
        self._forget(session_id)

    def backup(self, session: Session) -> str:
        """Keep the history as it is now (goose JSONL) in ``session_backups``; a name for the log."""
        taken = time.time()
        self.db.execute("INSERT INTO session_backups (session_id, taken, jsonl) VALUES (%s, %s, %s)",
                        (session.id, taken, self.file_bytes(session).decode("utf-8")), durable=True)
        return f"session_backups/{session.id}@{taken:.3f}"

    def file_bytes(self, session: Session) -> bytes:
        """The session as goose's JSONL file."""
        metadata = goose_ordered({**session.metadata, "message_count": len(session.messages)})
        return to_jsonl(metadata, (m.to_json() for m in session.messages)).encode("utf-8")

    def read_metadata(self, session_id: str) -> dict[str, Any]:
        row = self.db.fetchone("SELECT metadata FROM sessions WHERE id = %s", (self.check_id(session_id),))
        if row is None:
            raise SessionNotFound(session_id)
        return goose_ordered(row[0])

    def message_counts(self, session_ids: Iterable[str]) -> dict[str, int]:
        ids = list(session_ids)
        rows = self.db.fetchall("SELECT id, metadata->'message_count' FROM sessions WHERE id = ANY(%s)", (ids,))
        return {sid: count if isinstance(count, int) else 0 for sid, count in rows}

    def list_ids(self) -> list[tuple[str, float]]:
        return [(sid, updated) for sid, updated in
                self.db.fetchall("SELECT id, updated FROM sessions ORDER BY updated DESC, id")]

    def count(self) -> int:
        return self.db.fetchone("SELECT count(*) FROM sessions")[0]

    def acquire(self, session_id: str) -> "PgSessionLock":
        return self.locks.acquire(self.check_id(session_id))

    def remove_lock(self, held: "PgSessionLock") -> None:
        """Let go of a deleted session's lock (its lease row goes with it)."""
        held.release()

    def lock(self, session_id: str) -> "PgSessionLock":
        """``with store.lock(id):`` holds the session for one turn (``SessionBusy`` if taken)."""
        return self.acquire(session_id)

    def _remember(self, session: Session) -> None:
        with self._cache_lock:
            self._cache[session.id] = session
            self._cache.move_to_end(session.id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, session_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(session_id, None)


class PgSessionLock:
    """One held turn lock; ``release`` it once, from any thread."""

    def __init__(self, locks: "PgSessionLocks", session_id: str, token: str):
        self.locks = locks
        self.session_id = session_id
        self.token = token
        self._held = True

    @property
    def is_locked(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self.locks.release(self)

    def __enter__(self) -> "PgSessionLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class PgSessionLocks:
    """Turn locks as lease rows; a keeper thread refreshes this process's leases every ``lease / 3`` seconds."""

    def __init__(self, db: Database, lease: float):
        self.db = db
        self.lease = lease
        self._held: dict[str, PgSessionLock] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._keeper: threading.Thread | None = None

    def acquire(self, session_id: str) -> PgSessionLock:
        """Raises: SessionBusy: a live holder has it."""
        token = uuid.uuid4().hex
        holder = process.identity()
        now = time.time()
        with self.db.transaction(lock=f"session-lock:{session_id}") as conn:
            row = conn.execute("SELECT holder, heartbeat FROM session_locks WHERE session_id = %s",
                               (session_id,)).fetchone()
            if row is not None and not self._stale(row[0], row[1], now):
                raise SessionBusy(f"Session {session_id} is busy with another turn; retry when it finishes",
                                  headers={"Retry-After": "1"})
            conn.execute("INSERT INTO session_locks (session_id, token, holder, heartbeat) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (session_id) DO UPDATE SET token = EXCLUDED.token, holder = EXCLUDED.holder, "
                         "heartbeat = EXCLUDED.heartbeat", (session_id, token, jsonb(holder), now))
        held = PgSessionLock(self, session_id, token)
        with self._lock:
            self._held[token] = held
            self._start_keeper()
        return held

    def release(self, held: PgSessionLock) -> None:
        with self._lock:
            self._held.pop(held.token, None)
        try:
            self.db.execute("DELETE FROM session_locks WHERE session_id = %s AND token = %s",
                            (held.session_id, held.token))
        except Exception:  # the database is away: the lease runs out by itself
            log.exception("session lock not released session=%s", held.session_id)

    def _stale(self, holder: Mapping[str, Any], heartbeat: float, now: float) -> bool:
        return bool(process.is_gone(dict(holder))) or now - heartbeat > self.lease

    def _start_keeper(self) -> None:
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper = threading.Thread(target=self._keep, name="session-locks", daemon=True)
            self._keeper.start()

    def _keep(self) -> None:
        while not self._closed.wait(self.lease / 3):
            with self._lock:
                tokens = list(self._held)
            if tokens:
                try:
                    self.db.execute("UPDATE session_locks SET heartbeat = %s WHERE token = ANY(%s)",
                                    (time.time(), tokens))
                except Exception:
                    log.exception("session lock leases not refreshed")

    def close(self) -> None:
        self._closed.set()


class PgOwners:
    """``OwnerStorage`` over ``session_owners``."""

    def __init__(self, db: Database):
        self.db = db

    def owner(self, session_id: str) -> str | None:
        row = self.db.fetchone("SELECT owner FROM session_owners WHERE session_id = %s", (session_id,))
        return row[0] if row is not None else None

    def current(self) -> Mapping[str, str]:
        return dict(self.db.fetchall("SELECT session_id, owner FROM session_owners"))

    def claim(self, session_id: str, owner: str) -> None:
        self.db.execute("INSERT INTO session_owners (session_id, owner) VALUES (%s, %s) "
                        "ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner", (session_id, owner),
                        durable=True)

    def forget(self, session_id: str) -> None:
        self.db.execute("DELETE FROM session_owners WHERE session_id = %s", (session_id,))

