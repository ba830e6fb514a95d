"""Which backend keeps the server's state: files in the data dir (the default), or PostgreSQL.

``open_stores(settings, data)`` is the one seam: it returns ``Stores``, one
object per kind of state (``storage/interfaces.py``), built by the file
backend or, when ``database_url`` is set (``DATABASE_URL``), by the PostgreSQL
backend (``goose_api/postgres/``). ``Services.build`` and the web app take
their stores from it and never ask which backend it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from goose_api.agent.approvals import ToolPermissions
from goose_api.mcp.launch import configured_extensions
from goose_api.mcp.store import ExtensionStore
from goose_api.providers.selection import FileChoice
from goose_api.runs.event_log import LogSignal
from goose_api.runs.idempotency import IdempotencyStore
from goose_api.runs.journal import RunJournal
from goose_api.runs.queue import TurnQueue
from goose_api.runs.state import RunStateStore
from goose_api.runs.webhooks import FileOutbox
from goose_api.sessions.owners import SessionOwners
from goose_api.sessions.store import SessionStore
from goose_api.settings import Settings
from goose_api.storage.auth_failures import SqliteFailures
from goose_api.storage.data_dir import DataDir
from goose_api.storage.interfaces import (
    ChoiceStorage,
    ExtensionStorage,
    FailureStorage,
    IdempotencyStorage,
    JournalStorage,
    OutboxStorage,
    OwnerStorage,
    PermissionStorage,
    QueueStorage,
    ResponseStorage,
    RunStorage,
    SessionStorage,
)

FILES, POSTGRESQL = "files", "postgresql"


@dataclass
class Stores:
    """Every kind of state, each behind its interface; ``close`` lets go of what the backend holds."""

    backend: str
    sessions: SessionStorage
    owners: OwnerStorage
    runs: RunStorage
    journal: JournalStorage
    queue: QueueStorage
    idempotency: IdempotencyStorage
    permissions: PermissionStorage
    provider_choice: ChoiceStorage
    extensions: ExtensionStorage
    outbox: OutboxStorage
    auth_failures: Callable[[], FailureStorage]  # made by the web app (only HTTP needs it)
    problem: Callable[[], str | None] = lambda: None  # why the backend cannot serve now (readiness), or None
    responses: ResponseStorage | None = None  # the Responses API's records (None: the web package's files)
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def open_stores(settings: Settings, data: DataDir) -> Stores:
    """The stores of the backend the settings choose.

    Raises:
        ConfigurationError: ``DATABASE_URL`` is malformed, unreachable or refused (the message names it).
    """
    if settings.database_url:
        from goose_api.postgres.stores import postgres_stores

        return postgres_stores(settings, data)
    return file_stores(settings, data)


def check_backend(settings: Settings) -> None:
    """Make sure the chosen backend can work, before any worker starts (the master's ``on_starting``).

    Raises:
        ConfigurationError: ``DATABASE_URL`` is wrong, unreachable, refused, or its schema is behind.
    """
    if settings.database_url:
        from goose_api.postgres.stores import check_database

        check_database(settings.database_url)


def file_stores(settings: Settings, data: DataDir) -> Stores:
    """The file backend: everything in the data dir and goose's sessions dir (one machine)."""
    data.root.mkdir(parents=True, exist_ok=True)
    runs = RunStateStore(data, LogSignal(), settings.run_lease_timeout)
    return Stores(
        backend=FILES,
        sessions=SessionStore(data),
        owners=SessionOwners(data.owners, data.owners_legacy),
        runs=runs,
        journal=RunJournal(data),
        queue=TurnQueue(runs, settings.max_queued_turns),
        idempotency=IdempotencyStore(data, settings.idempotency_ttl),
        permissions=ToolPermissions(data.permissions),
        provider_choice=FileChoice(data.provider),
        extensions=ExtensionStore(data.extensions, configured_extensions(settings)),
        outbox=FileOutbox(data),
        auth_failures=lambda: SqliteFailures(data.auth_failures),
    )
