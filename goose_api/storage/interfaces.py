"""The interfaces of the server's state: one per kind, each implemented by every backend.

The file backend (the default, every class named below under "files") keeps
the state in the data dir; the PostgreSQL backend (``goose_api/postgres/``,
chosen by ``DATABASE_URL``) keeps it in tables. ``goose_api/backends.py``
builds one backend's stores (``Stores``) and ``Services.build`` wires them in;
nothing else knows which backend is in use.

These are ``typing.Protocol`` classes: a backend's class matches one by its
methods, it does not inherit from it. The domain types they speak of (a
``Session``, a run ``Record``, an ``Event``, a ``RunSpec``) belong to the
packages above; they are named here for the type checker only, so this module
still imports nothing of ours at run time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

if TYPE_CHECKING:
    from goose_api.agent.control import CallState
    from goose_api.conversation import Message
    from goose_api.runs.event_log import Event
    from goose_api.runs.idempotency import Claim
    from goose_api.runs.worker import RunSpec
    from goose_api.sessions.store import Session

Record = dict[str, Any]


class HeldLock(Protocol):
    """A lock this process holds; ``release`` it once, from any thread (``storage/flock.HeldLock``)."""

    @property
    def is_locked(self) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> "HeldLock": ...

    def __exit__(self, *exc: object) -> None: ...


class SessionStorage(Protocol):
    """Sessions and their messages (files: ``sessions/store.SessionStore``, goose JSONL files).

    ``acquire`` is the session's turn lock: one turn at a time per session, in
    every process sharing the backend; it is let go of when its holder dies.
    """

    def check_id(self, session_id: str) -> str: ...

    def location(self, session_id: str) -> str: ...

    def exists(self, session_id: str) -> bool: ...

    def create(self, session_id: str | None, working_dir: str, description: str = "") -> "Session": ...

    def load(self, session_id: str) -> "Session": ...

    def save(self, session: "Session", durable: bool = True) -> None: ...

    def append(self, session: "Session", *messages: "Message") -> None: ...

    def replace_messages(self, session: "Session", messages: list["Message"]) -> None: ...

    def delete(self, session_id: str) -> None: ...

    def discard(self, session: "Session") -> bool: ...

    def forget(self, session_id: str) -> None: ...

    def backup(self, session: "Session") -> str: ...  # the history kept before a summary replaces it

    def file_bytes(self, session: "Session") -> bytes: ...

    def read_metadata(self, session_id: str) -> dict[str, Any]: ...

    def message_counts(self, session_ids: Iterable[str]) -> dict[str, int]: ...

    def list_ids(self) -> list[tuple[str, float]]: ...

    def acquire(self, session_id: str) -> HeldLock: ...

    def lock(self, session_id: str) -> AbstractContextManager[Any]: ...

    def remove_lock(self, held: HeldLock) -> None: ...  # a deleted session's lock, let go of and removed


class OwnerStorage(Protocol):
    """Who owns each session (files: ``sessions/owners.SessionOwners``, owners.jsonl)."""

    def owner(self, session_id: str) -> str | None: ...

    def current(self) -> Mapping[str, str]: ...

    def claim(self, session_id: str, owner: str) -> None: ...

    def forget(self, session_id: str) -> None: ...


class EventLogStorage(Protocol):
    """One run's append-only event log (files: ``runs/event_log.EventLog``)."""

    base: int
    key: str  # what readers in this process wait on (``LogSignal`` channel)

    def append(self, kind: str, data: dict[str, Any], event_id: int | None = None) -> "Event": ...

    def next_id(self) -> int: ...

    def read(self, after: int = 0) -> list["Event"]: ...

    def last_id(self) -> int: ...

    def follow(self, after: int) -> Any: ...  # a reader: ``poll()`` and ``wait(timeout, poll)``

    def delete(self) -> None: ...


class Counter(Protocol):
    """A number every process sees move when something changed (``storage/change_counter.ChangeCounter``)."""

    def value(self) -> int: ...

    def bump(self) -> None: ...


class RunStorage(Protocol):
    """Run records (state, lease, approvals, cancel) and their event logs (files: ``runs/state.RunStateStore``).

    ``lock`` serialises the writers of one session's record and logs in every
    process; ``steering`` moves whenever a cancel or a decision was written.
    """

    steering: Counter
    lease_timeout: float

    def lock(self, session_id: str) -> AbstractContextManager[None]: ...

    def read(self, session_id: str) -> Record | None: ...

    def stamp(self, session_id: str) -> Any: ...

    def write(self, record: Record) -> None: ...

    def update(self, session_id: str, run_id: str, change: Callable[[Record], Any]) -> Record | None: ...

    def steer(self, session_id: str, run_id: str, change: Callable[[Record], Any]) -> Record | None: ...

    def conclude(self, session_id: str, run_id: str, log: EventLogStorage, state: str, data: dict[str, Any], *,
                 only_if_active: bool = False) -> int | None: ...

    def log(self, session_id: str, run_id: str, base: int) -> EventLogStorage: ...

    def has_log(self, session_id: str, run_id: str) -> bool: ...

    def log_of(self, record: Record) -> EventLogStorage: ...

    def owner_gone(self, record: Record) -> bool: ...

    def prune_logs(self, session_id: str, keep: int = ..., slack: int = 0) -> None: ...

    def delete(self, session_id: str) -> None: ...

    def sessions(self) -> list[str]: ...  # the sessions whose run the recovery sweep looks at

    def exclusive(self, name: str) -> HeldLock | None: ...  # a process-wide job lock (auto-resume), None: taken


class JournalStorage(Protocol):
    """Each tool call's steps, durable before each step takes effect (files: ``runs/journal.RunJournal``)."""

    def write(self, session_id: str, entry: dict[str, Any], sync: bool = True) -> None: ...

    def entries(self, session_id: str, turn: str | None = None) -> list[dict[str, Any]]: ...

    def calls(self, session_id: str, turn: str) -> dict[str, "CallState"]: ...

    def rotate(self, session_id: str) -> None: ...


class QueueStorage(Protocol):
    """Turns waiting for a busy session, FIFO per session (files: ``runs/queue.TurnQueue``)."""

    def items(self, session_id: str) -> list[dict[str, Any]]: ...

    def push(self, session_id: str, spec: "RunSpec", *, front: bool = False) -> None: ...

    def pop(self, session_id: str) -> "RunSpec | None": ...

    def clear(self, session_id: str) -> int: ...

    def sessions(self) -> list[str]: ...


class IdempotencyStorage(Protocol):
    """Idempotency-Key entries, scoped per client (files: ``runs/idempotency.IdempotencyStore``).

    A ``Claim``'s ``path`` is the entry's handle, whatever the backend makes it.
    """

    ttl: float

    def claim(self, client: str, key: str, print_: str, wait: float = ...) -> "Claim": ...

    def attach_run(self, path: Any, session_id: str, run_id: str, after: int) -> None: ...

    def finish(self, path: Any, response: dict[str, Any]) -> None: ...

    def drop(self, path: Any) -> None: ...

    def sweep(self) -> int: ...

    def count(self) -> int: ...


class PermissionStorage(Protocol):
    """The tools each key (by name) chose to always allow (files: ``agent/approvals.ToolPermissions``).

    ``key`` None (a turn of no known key) is never allowed and remembers nothing.
    """

    def always_allowed(self, tool: str, key: str | None) -> bool: ...

    def allow_always(self, tool: str, key: str | None) -> None: ...


class ChoiceStorage(Protocol):
    """The provider and model switched to at run time (files: ``providers/selection.FileChoice``)."""

    def read(self) -> dict[str, str]: ...

    def write(self, choice: dict[str, str]) -> None: ...


class ExtensionStorage(Protocol):
    """The extension configs every process runs (files: ``mcp/store.ExtensionStore``)."""

    def fresh(self) -> "ExtensionStorage": ...

    def changes(self) -> int: ...

    def signature(self) -> Any: ...

    def load(self) -> tuple[dict[str, dict[str, Any]], Any]: ...

    def update(self, change: Callable[[dict[str, dict[str, Any]]], bool]) -> bool: ...


class OutboxStorage(Protocol):
    """Webhook deliveries waiting, and given up (files: ``runs/webhooks.FileOutbox``).

    ``due`` hands out deliveries to attempt, each held by this process until
    ``delivered``, ``retry_at`` or ``given_up`` (another process skips it).
    """

    def add(self, delivery: dict[str, Any]) -> None: ...

    def due(self) -> Iterable[tuple[dict[str, Any] | None, float | None]]: ...

    def delivered(self, delivery: dict[str, Any]) -> None: ...

    def retry_at(self, delivery: dict[str, Any]) -> None: ...

    def given_up(self, delivery: dict[str, Any]) -> None: ...

    def pending(self) -> int: ...

    def waiting(self) -> list[dict[str, Any]]: ...

    def secret(self) -> str: ...  # the generated signing key, when none is configured


class ResponseStorage(Protocol):
    """The OpenAI Responses API's stored responses (files: ``web/responses/store.FileResponseStore``)."""

    def save(self, record: dict[str, Any]) -> None: ...

    def load(self, response_id: str) -> dict[str, Any] | None: ...

    def delete(self, response_id: str) -> None: ...


class FailureStorage(Protocol):
    """Failed key checks per client address (files: ``storage/auth_failures.SqliteFailures``).

    ``changes`` moves after every ``record`` (a reader may skip ``lookup`` while it stays).
    """

    def changes(self) -> int: ...

    def lookup(self, address: str) -> tuple[float, int] | None: ...

    def record(self, address: str, now: float, window: float) -> None: ...

    def close(self) -> None: ...
