"""The connection pool, and the transactions the PostgreSQL stores run their statements in.

One ``Database`` per process (made after gunicorn forked the worker: the pool
opens its connections lazily). A store runs a statement with ``execute`` /
``fetchone`` / ``fetchall`` on a pooled connection in autocommit; a block that
must be atomic, or serialised with other processes, runs in ``transaction``
(optionally holding a transaction-scoped advisory lock on a name). A
transaction belongs to its thread: statements the same thread runs inside it
use its connection, so a store's ``read`` inside another store's ``lock``
sees (and is part of) that transaction.

Durability is the file backend's: what it fsyncs (a saved message, a tool
call's journal step, an owner, an Idempotency-Key entry, a webhook delivery,
a queued turn) is written ``durable`` (its commit waits for the disk); what it
writes without an fsync (run records, events, leases, counters) commits
without waiting (``synchronous_commit`` off: a database crash may lose the
last moment of those, never corrupt them; the sweep then finds the run
interrupted, as after a machine crash with files).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from goose_api.errors import ConfigurationError, NotReady

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5       # seconds to reach the server at start-up
POOL_WAIT = 5.0           # how long a statement waits for a connection (then 503 not_ready: the database is away)
RETRY_AFTER = "2"


def check_url(url: str) -> str:
    """A libpq URL from ``DATABASE_URL`` (``postgres://`` as Procfile hosts give it, or ``postgresql://``).

    Raises:
        ConfigurationError: not such a URL (the message names DATABASE_URL, never the password).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not (parts.hostname or parts.path.strip("/")):
        raise ConfigurationError("DATABASE_URL must be a PostgreSQL URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE")
    return "postgresql" + url[len(parts.scheme):]


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"
    return f"{parts.scheme}://{(parts.username + '@') if parts.username else ''}{where}"


def jsonb(value: Any) -> Jsonb:
    """``value`` for a JSONB column: NUL characters, which JSONB cannot hold (a tool's output may have them),
    become U+FFFD; nothing else changes."""
    return Jsonb(_without_nul(value))


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\0", "\ufffd") if "\0" in value else value
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def lock_key(name: str) -> int:
    """A 64-bit advisory lock key for ``name`` (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 20, name: str = "goose-api"):
        self.url = check_url(url)
        self._local = threading.local()
        self._pool = ConnectionPool(self.url, min_size=min_size, max_size=max_size, open=False, name=name,
                                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                                            "application_name": name, "options": "-c synchronous_commit=off"},
                                    timeout=POOL_WAIT, check=ConnectionPool.check_connection)

    def open(self) -> "Database":
        """Reach the server once, so a wrong or unreachable URL fails at start-up.

        Raises:
            ConfigurationError: the server cannot be reached, or refuses the login (names DATABASE_URL).
        """
        try:
            with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(f"Cannot use the database at DATABASE_URL ({redacted(self.url)}): {reason}. "
                                     "Check the URL, that the server runs and that it accepts this user") from None
        self._pool.open(wait=False)
        return self

    def close(self) -> None:
        self._pool.close()

    def problem(self) -> str | None:
        """Why the database cannot be used now (for readiness: names DATABASE_URL, not the password), or None."""
        try:
            self.fetchone("SELECT 1")
        except NotReady:
            return f"the database at DATABASE_URL ({redacted(self.url)}) is unreachable"
        return None

    # --- statements --------------------------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """This thread's transaction's connection, else a pooled one (autocommit).

        Raises:
            NotReady: the database cannot be reached now (503 with Retry-After).
        """
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        try:
            with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise NotReady(f"The database at DATABASE_URL ({redacted(self.url)}) is unreachable "
                           f"({type(exc).__name__}); retry shortly", headers={"Retry-After": RETRY_AFTER}) from None

    def execute(self, sql: str, params: Any = None, *, durable: bool = False) -> int:
        """Run one statement; returns the rows it changed. ``durable``: its commit waits for the disk."""
        if durable:
            with self.transaction(durable=True) as conn:
                return conn.execute(sql, params).rowcount
        with self.connection() as conn:
            return conn.execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Any = None) -> tuple | None:
        with self.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            return cur.execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Any = None) -> list[tuple]:
        with self.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            return cur.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self, lock: str | None = None, durable: bool = False) -> Iterator[psycopg.Connection]:
        """One transaction on this thread (nested ones join it), holding the advisory lock ``lock`` if named;
        ``durable``: its commit waits for the disk (a nested durable one makes the whole transaction so).

        Raises:
            NotReady: the database cannot be reached now.
        """
        current = getattr(self._local, "conn", None)
        if current is not None:
            if lock is not None:
                current.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
            if durable:
                current.execute("SET LOCAL synchronous_commit TO on")
            yield current
            return
        with self.connection() as conn:
            with conn.transaction():
                if lock is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
                if durable:
                    conn.execute("SET LOCAL synchronous_commit TO on")
                self._local.conn = conn
                try:
                    yield conn
                finally:
                    self._local.conn = None
