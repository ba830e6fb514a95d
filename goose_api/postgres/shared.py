"""The smaller kinds of state in PostgreSQL: idempotency keys, tool permissions, the provider
choice, the extensions document, the webhook outbox, failed key checks and generated secrets.

Each keeps the file backend's semantics (its class is the parent or the model);
the cross-process locks are transactions holding an advisory lock, so they
hold across hosts too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from typing import Any, Callable, Iterator

from goose_api.mcp.store import Configs, ExtensionStore
from goose_api.postgres.db import Database, jsonb
from goose_api.runs.idempotency import IdempotencyStore

log = logging.getLogger(__name__)

DEFAULT_KEY = "default"  # the api_key holder's name: whose the choices of a single-key installation are
CACHE_SECONDS = 1.0  # how long a process trusts its copy of a rarely changed value (provider choice)
FAILURE_LOOK = 1.0   # how long an address found unthrottled is not looked up again (unless it failed here)


def stored_secret(db: Database, name: str, what: str) -> str:
    """A secret generated once for the installation and kept in ``kv`` (never logged)."""
    made = secrets.token_urlsafe(32)
    if db.execute("INSERT INTO kv (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, jsonb(made)),
                  durable=True):
        log.info("%s generated and kept in the database", what)
    return db.fetchone("SELECT value FROM kv WHERE name = %s", (name,))[0]


class PgIdempotency(IdempotencyStore):
    """Idempotency-Key entries as rows, each read and changed under its advisory lock."""

    def __init__(self, db: Database, ttl: float):
        self.db = db
        self.ttl = ttl

    def _path(self, client: str, key: str) -> str:
        return hashlib.sha256(f"{client}\0{key}".encode()).hexdigest()[:40]

    def _locked(self, digest: str) -> Any:
        return self.db.transaction(lock=f"idempotency:{digest}")

    def _read(self, digest: str) -> dict[str, Any] | None:
        row = self.db.fetchone("SELECT entry, expires FROM idempotency WHERE digest = %s", (digest,))
        if row is None:
            return None
        if row[1] < time.time():
            self._delete(digest)
            return None
        return dict(row[0])

    def _write(self, digest: str, entry: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO idempotency (digest, entry, expires) VALUES (%s, %s, %s) ON CONFLICT (digest) "
                        "DO UPDATE SET entry = EXCLUDED.entry, expires = EXCLUDED.expires",
                        (digest, jsonb(entry), entry["expires"]), durable=True)

    def _delete(self, digest: str) -> None:
        self.db.execute("DELETE FROM idempotency WHERE digest = %s", (digest,))

    def sweep(self) -> int:
        return self.db.execute("DELETE FROM idempotency WHERE expires < %s", (time.time(),))

    def count(self) -> int:
        return self.db.fetchone("SELECT count(*) FROM idempotency")[0]


class PgPermissions:
    """The tools each key always allows, as rows (``key``: the key's name; no key remembers nothing)."""

    def __init__(self, db: Database):
        self.db = db

    def always_allowed(self, tool: str, key: str | None = DEFAULT_KEY) -> bool:
        return key is not None and self.db.fetchone(
            "SELECT 1 FROM tool_permissions WHERE client = %s AND tool = %s", (key, tool)) is not None

    def allow_always(self, tool: str, key: str | None = DEFAULT_KEY) -> None:
        if key is None:
            return
        self.db.execute("INSERT INTO tool_permissions (client, tool) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (key, tool), durable=True)
        log.info("tool always allowed tool=%s key=%s", tool, key)


class PgChoice:
    """The provider choice in ``kv``; read at most once a ``CACHE_SECONDS`` per process."""

    NAME = "provider"

    def __init__(self, db: Database):
        self.db = db
        self._value: dict[str, str] = {}
        self._read_at = -CACHE_SECONDS

    def read(self) -> dict[str, str]:
        if time.monotonic() - self._read_at >= CACHE_SECONDS:
            row = self.db.fetchone("SELECT value FROM kv WHERE name = %s", (self.NAME,))
            self._value = dict(row[0]) if row is not None and isinstance(row[0], dict) else {}
            self._read_at = time.monotonic()
        return self._value

    def write(self, choice: dict[str, str]) -> None:
        self.db.execute("INSERT INTO kv (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET "
                        "value = EXCLUDED.value, version = kv.version + 1", (self.NAME, jsonb(choice)), durable=True)
        self._value, self._read_at = dict(choice), time.monotonic()


class PgExtensionStore(ExtensionStore):
    """The extensions document in ``kv``; its ``version`` is the signature every process compares."""

    NAME = "extensions"

    def __init__(self, db: Database, seed: Configs):
        self.db = db
        self.path = "the database's extensions"  # named by log lines only
        self._lock = _Transaction(db, "extensions")
        self._seed = seed
        self._seed_hash = hashlib.sha256(json.dumps(seed, sort_keys=True).encode()).hexdigest()
        self._local_changes = 0

    def fresh(self) -> "PgExtensionStore":
        return self

    def changes(self) -> int:
        """Moves with this process's writes; another process's are seen through ``signature`` (each second)."""
        return self._local_changes

    def signature(self) -> int | None:
        row = self.db.fetchone("SELECT version FROM kv WHERE name = %s", (self.NAME,))
        return row[0] if row is not None else None

    def _read(self) -> dict[str, Any]:
        row = self.db.fetchone("SELECT value FROM kv WHERE name = %s", (self.NAME,))
        return dict(row[0]) if row is not None else {"version": 1, "extensions": {}}

    def _write(self, document: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO kv (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET "
                        "value = EXCLUDED.value, version = kv.version + 1", (self.NAME, jsonb(document)), durable=True)
        self._local_changes += 1


class _Transaction:
    """A reusable ``with`` over a locked transaction (what ``ExtensionStore`` expects of its lock)."""

    def __init__(self, db: Database, name: str):
        self.db = db
        self.name = name
        self._open = threading.local()

    def __enter__(self) -> None:
        context = self.db.transaction(lock=self.name)
        context.__enter__()
        self._open.context = context

    def __exit__(self, *exc: Any) -> None:
        context, self._open.context = self._open.context, None
        context.__exit__(*exc)


class PgOutbox:
    """Webhook deliveries as rows; an attempt holds its row (``FOR UPDATE SKIP LOCKED``) while it is sent."""

    def __init__(self, db: Database):
        self.db = db

    def secret(self) -> str:
        return stored_secret(self.db, "webhook_secret", "webhook secret")

    def add(self, delivery: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO webhook_deliveries (id, delivery, next_at) VALUES (%s, %s, %s)",
                        (delivery["id"], jsonb(delivery), delivery["next_at"]), durable=True)

    def due(self) -> Iterator[tuple[dict[str, Any] | None, float | None]]:
        ids = [row[0] for row in self.db.fetchall("SELECT id FROM webhook_deliveries WHERE NOT failed ORDER BY id")]
        for delivery_id in ids:
            with self.db.transaction() as conn:
                row = conn.execute("SELECT delivery FROM webhook_deliveries WHERE id = %s AND NOT failed "
                                   "FOR UPDATE SKIP LOCKED", (delivery_id,)).fetchone()
                if row is None:
                    continue  # sent by another process meanwhile, or being sent
                delivery = dict(row[0])
                if delivery["next_at"] > time.time():
                    yield None, delivery["next_at"] - time.time()
                else:
                    yield delivery, None

    def delivered(self, delivery: dict[str, Any]) -> None:
        self.db.execute("DELETE FROM webhook_deliveries WHERE id = %s", (delivery["id"],))

    def retry_at(self, delivery: dict[str, Any]) -> None:
        self.db.execute("UPDATE webhook_deliveries SET delivery = %s, next_at = %s WHERE id = %s",
                        (jsonb(delivery), delivery["next_at"], delivery["id"]), durable=True)

    def given_up(self, delivery: dict[str, Any]) -> None:
        self.db.execute("UPDATE webhook_deliveries SET delivery = %s, failed = true WHERE id = %s",
                        (jsonb(delivery), delivery["id"]), durable=True)

    def pending(self) -> int:
        return self.db.fetchone("SELECT count(*) FROM webhook_deliveries WHERE NOT failed")[0]

    def waiting(self) -> list[dict[str, Any]]:
        return [dict(row[0]) for row in
                self.db.fetchall("SELECT delivery FROM webhook_deliveries WHERE NOT failed ORDER BY id")]


class PgResponses:
    """The Responses API's stored responses as rows (``web/responses/store.ResponseStore``)."""

    ID = re.compile(r"^resp_[0-9a-f]{32}$")  # the web package's pattern: an id that is not one is none

    def __init__(self, db: Database):
        self.db = db

    def save(self, record: dict[str, Any]) -> None:
        if not self.ID.match(record["id"]):
            raise ValueError(f"not a response id: {record['id']!r}")
        self.db.execute("INSERT INTO responses (id, record) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET "
                        "record = EXCLUDED.record", (record["id"], jsonb(record)), durable=True)

    def load(self, response_id: str) -> dict[str, Any] | None:
        if not self.ID.match(response_id):
            return None
        row = self.db.fetchone("SELECT record FROM responses WHERE id = %s", (response_id,))
        return dict(row[0]) if row is not None else None

    def delete(self, response_id: str) -> None:
        self.db.execute("DELETE FROM responses WHERE id = %s", (response_id,))


class PgFailures:
    """Failed key checks per address, as rows shared by every process and host.

    ``changes`` moves with this process's failures and at least once a
    ``FAILURE_LOOK``, so a throttle started by failures elsewhere is seen within a second.
    """

    RECORD = ("INSERT INTO auth_failures (address, started, count) VALUES (%(address)s, %(now)s, 1) "
              "ON CONFLICT (address) DO UPDATE SET "
              "count = CASE WHEN %(now)s - auth_failures.started >= %(window)s THEN 1 ELSE auth_failures.count + 1 END, "
              "started = CASE WHEN %(now)s - auth_failures.started >= %(window)s THEN %(now)s "
              "ELSE auth_failures.started END")

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.clock = clock
        self._local = 0

    def changes(self) -> int:
        return self._local * 2**32 + int(self.clock() / FAILURE_LOOK)

    def lookup(self, address: str) -> tuple[float, int] | None:
        row = self.db.fetchone("SELECT started, count FROM auth_failures WHERE address = %s", (address,))
        return (row[0], row[1]) if row is not None else None

    def record(self, address: str, now: float, window: float) -> None:
        with self.db.transaction():
            self.db.execute(self.RECORD, {"address": address, "now": now, "window": window})
            self.db.execute("DELETE FROM auth_failures WHERE started < %s", (now - 2 * window,))
        self._local += 1

    def close(self) -> None:
        pass

