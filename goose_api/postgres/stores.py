"""The PostgreSQL backend's stores (``backends.Stores``), over one connection pool per process."""

from __future__ import annotations

from goose_api.backends import POSTGRESQL, Stores
from goose_api.mcp.launch import configured_extensions
from goose_api.postgres import migrate
from goose_api.postgres.db import Database
from goose_api.postgres.runs import PgJournal, PgQueue, PgRunStore
from goose_api.postgres.sessions import PgOwners, PgSessionLocks, PgSessionStore
from goose_api.postgres.shared import (
    PgChoice,
    PgExtensionStore,
    PgFailures,
    PgIdempotency,
    PgOutbox,
    PgPermissions,
    PgResponses,
)
from goose_api.runs.event_log import LogSignal
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir


def check_database(url: str) -> None:
    """Raises: ConfigurationError: the database cannot be used (names DATABASE_URL)."""
    db = Database(url, min_size=0, max_size=1).open()
    try:
        migrate.check(db)
    finally:
        db.close()


def postgres_stores(settings: Settings, data: DataDir) -> Stores:
    """Raises: ConfigurationError: ``DATABASE_URL`` is wrong, unreachable, or its schema is behind."""
    db = Database(settings.database_url or "").open()
    try:
        migrate.check(db)
    except BaseException:
        db.close()
        raise
    data.root.mkdir(parents=True, exist_ok=True)  # scratch files only (exports, imports)
    locks = PgSessionLocks(db, settings.run_lease_timeout)
    runs = PgRunStore(db, LogSignal(), settings.run_lease_timeout)
    stores = Stores(
        backend=POSTGRESQL,
        sessions=PgSessionStore(db, locks),
        owners=PgOwners(db),
        runs=runs,
        journal=PgJournal(db),
        queue=PgQueue(runs, settings.max_queued_turns),
        idempotency=PgIdempotency(db, settings.idempotency_ttl),
        permissions=PgPermissions(db),
        provider_choice=PgChoice(db),
        extensions=PgExtensionStore(db, configured_extensions(settings)),
        outbox=PgOutbox(db),
        auth_failures=lambda: PgFailures(db),
        problem=db.problem,
        responses=PgResponses(db),
    )
    stores._closers.extend([db.close, locks.close])
    return stores
