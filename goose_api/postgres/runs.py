"""Run records, event logs, the journal and queued turns in PostgreSQL.

The semantics are the file backend's (``runs/state.py``, ``runs/event_log.py``,
``runs/journal.py``, ``runs/queue.py``); only where the data lives differs:

- a session's state lock is a transaction holding an advisory lock on the
  session, so the writers of its record and events exclude each other in
  every process and on every host;
- a run record is a row (``run_records``) whose ``version`` is its stamp;
- events are rows (``run_events``); readers in another process poll them,
  readers in the writer's process are woken at once (``LogSignal``);
- journal entries are rows, committed (durable) before the step they announce.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import psycopg

from goose_api.postgres.db import Database, jsonb, lock_key
from goose_api.runs.event_log import Event, LogReader, LogSignal
from goose_api.runs.journal import RunJournal
from goose_api.runs.queue import TurnQueue, queue_full
from goose_api.runs.state import ACTIVE_STATES, INTERRUPTED, LOGS_KEPT, Record, RunStateStore
from goose_api.runs.worker import RunSpec

JOURNAL_KEPT = 10_000  # entries kept per session when a new turn starts (the turns before it are history)


class PgCounter:
    """A ``Counter`` row: every process sees it move."""

    def __init__(self, db: Database, name: str):
        self.db = db
        self.name = name

    def value(self) -> int:
        row = self.db.fetchone("SELECT value FROM counters WHERE name = %s", (self.name,))
        return row[0] if row is not None else 0

    def bump(self) -> None:
        self.db.execute("INSERT INTO counters (name, value) VALUES (%s, 1) "
                        "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1", (self.name,))


class PgEventLog:
    """One run's events as rows; ids continue the session's previous run (``base``)."""

    def __init__(self, store: "PgRunStore", session_id: str, run_id: str, base: int):
        self.store = store
        self.db = store.db
        self.session_id = session_id
        self.run_id = run_id
        self.base = base
        self.key = f"pg:{session_id}:{run_id}"
        self.signal = store.signal

    def append(self, kind: str, data: dict[str, Any], event_id: int | None = None) -> Event:
        with self.store.lock(self.session_id):
            event = Event(event_id if event_id is not None else self.next_id(), kind, data, time.time())
            self.db.execute("INSERT INTO run_events (session_id, run_id, id, type, data, time) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            (self.session_id, self.run_id, event.id, kind, jsonb(data), event.time))
        self.signal.notify(self.key)
        return event

    def next_id(self) -> int:
        return self.last_id() + 1

    def last_id(self) -> int:
        row = self.db.fetchone("SELECT max(id) FROM run_events WHERE session_id = %s AND run_id = %s",
                               (self.session_id, self.run_id))
        return row[0] if row is not None and row[0] is not None else self.base

    def read(self, after: int = 0) -> list[Event]:
        rows = self.db.fetchall("SELECT id, type, data, time FROM run_events WHERE session_id = %s AND run_id = %s "
                                "AND id > %s ORDER BY id", (self.session_id, self.run_id, after))
        return [Event(*row) for row in rows]

    def follow(self, after: int) -> "PgLogReader":
        return PgLogReader(self, after)

    def delete(self) -> None:
        self.db.execute("DELETE FROM run_events WHERE session_id = %s AND run_id = %s",
                        (self.session_id, self.run_id))


class PgLogReader(LogReader):
    """Reads new events by id (the file reader's ``wait`` over this ``poll``)."""

    def __init__(self, log: PgEventLog, after: int):
        self.log = log
        self.after = after

    def poll(self) -> list[Event]:
        events = self.log.read(self.after)
        if events:
            self.after = events[-1].id
        return events


class PgRunStore:
    """``RunStorage`` over ``run_records`` and ``run_events``."""

    update = RunStateStore.update
    steer = RunStateStore.steer
    conclude = RunStateStore.conclude
    owner_gone = RunStateStore.owner_gone
    log_of = RunStateStore.log_of

    def __init__(self, db: Database, signal: LogSignal, lease_timeout: float):
        self.db = db
        self.signal = signal
        self.lease_timeout = lease_timeout
        self.steering = PgCounter(db, "steering")

    @contextmanager
    def lock(self, session_id: str) -> Iterator[None]:
        with self.db.transaction(lock=f"run-state:{session_id}"):
            yield

    def read(self, session_id: str) -> Record | None:
        row = self.db.fetchone("SELECT record FROM run_records WHERE session_id = %s", (session_id,))
        return dict(row[0]) if row is not None else None

    def stamp(self, session_id: str) -> int | None:
        row = self.db.fetchone("SELECT version FROM run_records WHERE session_id = %s", (session_id,))
        return row[0] if row is not None else None

    def write(self, record: Record) -> None:
        record["updated"] = time.time()
        self.db.execute("INSERT INTO run_records (session_id, record) VALUES (%s, %s) ON CONFLICT (session_id) "
                        "DO UPDATE SET record = EXCLUDED.record, version = run_records.version + 1",
                        (record["session_id"], jsonb(record)))

    def log(self, session_id: str, run_id: str, base: int) -> PgEventLog:
        return PgEventLog(self, session_id, run_id, base)

    def has_log(self, session_id: str, run_id: str) -> bool:
        return self.db.fetchone("SELECT 1 FROM run_events WHERE session_id = %s AND run_id = %s LIMIT 1",
                                (session_id, run_id)) is not None

    def prune_logs(self, session_id: str, keep: int = LOGS_KEPT, slack: int = 0) -> None:
        """Drop the events of the oldest runs beyond ``keep``."""
        runs = self.db.fetchall("SELECT run_id FROM run_events WHERE session_id = %s GROUP BY run_id "
                                "ORDER BY max(time) DESC", (session_id,))
        if len(runs) <= keep + slack:
            return
        old = [run_id for (run_id,) in runs[keep:]]
        self.db.execute("DELETE FROM run_events WHERE session_id = %s AND run_id = ANY(%s)", (session_id, old))

    def delete(self, session_id: str) -> None:
        with self.db.transaction():
            for table in ("run_records", "run_events", "run_journal", "run_queue"):
                self.db.execute(f"DELETE FROM {table} WHERE session_id = %s", (session_id,))

    def sessions(self) -> list[str]:
        """The sessions whose run the sweep must look at: active or interrupted (an idle or failed one needs
        nothing, and a table of every session ever run is not read every few seconds by every process)."""
        return [sid for (sid,) in self.db.fetchall(
            "SELECT session_id FROM run_records WHERE record->>'state' = ANY(%s) ORDER BY session_id",
            ([*ACTIVE_STATES, INTERRUPTED],))]

    def exclusive(self, name: str) -> "JobLock | None":
        """A job lock one process of the installation holds (a session-level advisory lock); None: taken."""
        conn = psycopg.connect(self.db.url, autocommit=True)
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(f"job:{name}"),)).fetchone()[0]:
            conn.close()
            return None
        return JobLock(conn)


class JobLock:
    """Held while its connection is open."""

    def __init__(self, conn: psycopg.Connection):
        self._conn: psycopg.Connection | None = conn

    @property
    def is_locked(self) -> bool:
        return self._conn is not None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "JobLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class PgJournal(RunJournal):
    """``JournalStorage`` over ``run_journal``: an entry is committed before its step takes effect."""

    def __init__(self, db: Database):
        self.db = db

    def write(self, session_id: str, entry: dict[str, Any], sync: bool = True) -> None:
        entry = {"time": round(time.time(), 3), **entry}
        self.db.execute("INSERT INTO run_journal (session_id, turn, entry) VALUES (%s, %s, %s)",
                        (session_id, entry.get("turn"), jsonb(entry)), durable=sync)

    def entries(self, session_id: str, turn: str | None = None) -> list[dict[str, Any]]:
        if turn is None:
            rows = self.db.fetchall("SELECT entry FROM run_journal WHERE session_id = %s ORDER BY seq", (session_id,))
        else:
            rows = self.db.fetchall("SELECT entry FROM run_journal WHERE session_id = %s AND turn = %s ORDER BY seq",
                                    (session_id, turn))
        return [dict(row[0]) for row in rows]

    def rotate(self, session_id: str) -> None:
        """Keep the newest ``JOURNAL_KEPT`` entries of the session (call when a new turn starts)."""
        self.db.execute("DELETE FROM run_journal WHERE session_id = %s AND seq < (SELECT min(seq) FROM "
                        "(SELECT seq FROM run_journal WHERE session_id = %s ORDER BY seq DESC LIMIT %s) AS kept)",
                        (session_id, session_id, JOURNAL_KEPT))


class PgQueue(TurnQueue):
    """``QueueStorage`` over ``run_queue``: positions below the head for ``front``, above the tail otherwise."""

    def __init__(self, state: PgRunStore, limit: int):
        self.state = state
        self.db = state.db
        self.limit = limit

    def items(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.db.fetchall("SELECT item FROM run_queue WHERE session_id = %s ORDER BY position", (session_id,))
        return [dict(row[0]) for row in rows]

    def push(self, session_id: str, spec: RunSpec, *, front: bool = False) -> None:
        entry = {**spec.to_json(), "queued": time.time()}
        edge = "min(position) - 1" if front else "max(position) + 1"
        with self.state.lock(session_id), self.db.transaction(durable=True):
            queued = self.db.fetchone("SELECT count(*) FROM run_queue WHERE session_id = %s", (session_id,))[0]
            if queued >= self.limit:
                raise queue_full(session_id, self.limit)
            self.db.execute(f"INSERT INTO run_queue (session_id, position, item) SELECT %s, coalesce({edge}, 0), %s "
                            "FROM run_queue WHERE session_id = %s", (session_id, jsonb(entry), session_id))

    def pop(self, session_id: str) -> RunSpec | None:
        with self.state.lock(session_id):
            row = self.db.fetchone("DELETE FROM run_queue WHERE session_id = %s AND position = "
                                   "(SELECT min(position) FROM run_queue WHERE session_id = %s) RETURNING item",
                                   (session_id, session_id))
        return RunSpec.from_json(dict(row[0])) if row is not None else None

    def clear(self, session_id: str) -> int:
        return self.db.execute("DELETE FROM run_queue WHERE session_id = %s", (session_id,))

    def sessions(self) -> list[str]:
        return [sid for (sid,) in self.db.fetchall("SELECT DISTINCT session_id FROM run_queue")]

