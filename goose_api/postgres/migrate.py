"""Versioned schema migrations: ``migrations/NNNN_name.sql``, applied in order, each once.

``schema_migrations`` records the versions applied. ``migrate`` takes a
session-level advisory lock first, so two processes migrating at once (two
``release:`` runs, or a web process starting beside one) apply each file once.
A server refuses to start on a database whose schema is behind (``check``):
``goose-api migrate`` (the Procfile's ``release:`` line) brings it up to date.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

from goose_api.errors import ConfigurationError
from goose_api.postgres.db import Database, lock_key

log = logging.getLogger(__name__)

MIGRATION_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK = "goose-api:migrate"
LEDGER = ("CREATE TABLE IF NOT EXISTS schema_migrations "
          "(version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped, in order."""
    found = []
    for entry in resources.files("goose_api.postgres.migrations").iterdir():
        match = MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def applied(db: Database) -> set[int]:
    rows = db.fetchall("SELECT version FROM schema_migrations") if _has_ledger(db) else []
    return {row[0] for row in rows}


def migrate(db: Database) -> list[int]:
    """Apply the migrations not applied yet, each in its own transaction; returns their versions."""
    done = []
    with db.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(LOCK),))
        try:
            conn.execute(LEDGER)
            have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            for version, name, sql in migrations():
                if version in have:
                    continue
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit TO on")
                    conn.execute(sql)
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                log.info("migration applied version=%04d name=%s", version, name)
                done.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(LOCK),))
    return done


def check(db: Database) -> None:
    """Raises: ConfigurationError: the database's schema is behind this version (run ``goose-api migrate``)."""
    missing = [version for version, _, _ in migrations() if version not in applied(db)]
    if missing:
        raise ConfigurationError(f"The database at DATABASE_URL lacks schema migrations {missing}: run "
                                 "`goose-api migrate` (the Procfile's release: line) before starting the server")


def _has_ledger(db: Database) -> bool:
    return db.fetchone("SELECT to_regclass('schema_migrations')")[0] is not None
