"""Throttling of failed key checks, per client address, shared by every worker.

Each address may fail the key check ``auth_failure_limit`` times within
``auth_failure_window`` seconds; after that every request from it that needs a
key is answered 429 (with ``Retry-After``) until the window ends, whether or
not its key is right: answering a right key differently would tell a guesser
when it found one. The counts live in a small SQLite file in the data dir, so
all gunicorn workers (and a restarted server) share them; SQLite does the
cross-process locking, and one upsert statement keeps each update atomic.

Every request that needs a key is checked, so the check must be cheap: after
each failure a shared change counter is bumped (``change_counter.py``), and an
address found unthrottled is not looked up again until the counter moves (a
throttle can only start with a new failure; time only ends one).

The address is the TCP peer (``REMOTE_ADDR``). Behind a reverse proxy that is
the proxy: then every client shares one budget (see the README).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from goose_api.errors import TooManyRequests
from goose_api.storage.change_counter import ChangeCounter
from goose_api.storage.data_dir import changes_of

MAX_REMEMBERED = 10_000  # unthrottled addresses remembered per process before starting over
SCHEMA = "CREATE TABLE IF NOT EXISTS failures (address TEXT PRIMARY KEY, started REAL NOT NULL, count INTEGER NOT NULL)"
RECORD = """
INSERT INTO failures (address, started, count) VALUES (:address, :now, 1)
ON CONFLICT (address) DO UPDATE SET
    count = CASE WHEN :now - started >= :window THEN 1 ELSE count + 1 END,
    started = CASE WHEN :now - started >= :window THEN :now ELSE started END
"""


class AuthThrottle:
    def __init__(self, path: Path, limit: int, window: float, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()  # one connection per process, one statement at a time
        self._connection: sqlite3.Connection | None = None
        self._changes = ChangeCounter(changes_of(self.path))
        self._clear: dict[str, int] = {}  # address -> change count when it was last found unthrottled

    def check(self, address: str) -> None:
        """Refuse an address that used up its failures in the current window.

        Raises:
            TooManyRequests: with ``Retry-After`` set to the seconds left in the window.
        """
        changes = self._changes.value()
        if self._clear.get(address) == changes:
            return  # no key check failed anywhere since this address was last found unthrottled
        with self._lock:
            row = self._db().execute("SELECT started, count FROM failures WHERE address = ?",
                                     (address,)).fetchone()
        if row is not None:
            started, count = row
            left = started + self.window - self.clock()
            if count >= self.limit and left > 0:
                raise TooManyRequests("Too many failed API key checks from this address; retry later",
                                      headers={"Retry-After": str(max(1, math.ceil(left)))})
        if len(self._clear) >= MAX_REMEMBERED:
            self._clear.clear()
        self._clear[address] = changes

    def failed(self, address: str) -> None:
        """Count one failed key check for ``address`` (and forget windows that ended)."""
        now = self.clock()
        with self._lock:
            db = self._db()
            db.execute(RECORD, {"address": address, "now": now, "window": self.window})
            db.execute("DELETE FROM failures WHERE started < ?", (now - 2 * self.window,))
        self._changes.bump()  # after the commit: a reader that sees the bump sees the failure

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._changes.close()

    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use (after gunicorn forked this worker)."""
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
            self._connection = db
        return self._connection
