"""Failed key checks per client address in a small SQLite file (the file backend's ``FailureStorage``).

SQLite does the cross-process locking and one upsert keeps each update atomic,
so every gunicorn worker on the machine (and a restarted server) shares the
counts. A shared change counter (``change_counter.py``) moves after each
failure, so a reader can skip the lookup while nothing failed anywhere.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from goose_api.storage.change_counter import ChangeCounter
from goose_api.storage.data_dir import changes_of

SCHEMA = "CREATE TABLE IF NOT EXISTS failures (address TEXT PRIMARY KEY, started REAL NOT NULL, count INTEGER NOT NULL)"
RECORD = """
INSERT INTO failures (address, started, count) VALUES (:address, :now, 1)
ON CONFLICT (address) DO UPDATE SET
    count = CASE WHEN :now - started >= :window THEN 1 ELSE count + 1 END,
    started = CASE WHEN :now - started >= :window THEN :now ELSE started END
"""


class SqliteFailures:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection per process, one statement at a time
        self._connection: sqlite3.Connection | None = None
        self._changes = ChangeCounter(changes_of(self.path))

    def changes(self) -> int:
        return self._changes.value()

    def lookup(self, address: str) -> tuple[float, int] | None:
        """(window start, failures in it) of ``address``, or None."""
        with self._lock:
            row = self._db().execute("SELECT started, count FROM failures WHERE address = ?",
                                     (address,)).fetchone()
        return (row[0], row[1]) if row is not None else None

    def record(self, address: str, now: float, window: float) -> None:
        """Count one failure (a new window if the last one ended) and forget windows long over."""
        with self._lock:
            db = self._db()
            db.execute(RECORD, {"address": address, "now": now, "window": window})
            db.execute("DELETE FROM failures WHERE started < ?", (now - 2 * window,))
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
