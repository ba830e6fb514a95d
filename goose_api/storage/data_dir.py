"""The data dir's layout: every file and folder the server keeps, named in one place.

``Services.build`` makes one ``DataDir`` and hands each store the paths it
owns; no other module joins a path under the data dir. The layout::

    <data_dir>/
      api_key                    generated API key, when none is configured (0600; + .lock)
      webhook_secret             generated webhook signing key, when none is configured (0600; + .lock)
      owners.jsonl               who owns each session: an append-only log (owners.json: its older form)
      permissions.json           tools always allowed (+ .lock)
      provider.json              the provider and model switched to at run time
      extensions.json            the extensions every worker runs (0600; + .lock, + .changes)
      auth_failures.sqlite3      failed key checks per address (+ WAL files, + .changes)
      locks/<session>.lock       a session's turn lock (flock)
      runs/                      run state, one folder per session:
        steering.changes           bumped by every cancel or approval decision
        auto_resume.lock           the one worker resuming interrupted runs at start
        <session>/run.json         the current (or last) run's record
        <session>/state.lock       held by every writer of the record and the event logs
        <session>/<run>.events.jsonl  a run's event log
        <session>/journal.jsonl    every tool call's steps (journal.1.jsonl: the previous one)
        <session>/queue.jsonl      turns waiting for the session (queue.json: its older form)
      idempotency/<hash>.json    one entry per Idempotency-Key (locks/<xx>.lock: 256 shared locks)
      webhooks/whd_<id>.json     deliveries waiting (+ .lock while one is sent); failed/: given up
      responses/<resp_id>.json   the OpenAI Responses API's responses (each names its session)
      tmp/                       scratch files of exports and imports (sessions.db)
      prometheus/                metrics of every gunicorn worker (unless PROMETHEUS_MULTIPROC_DIR)
      memory/                    the builtin memory extension's notes

The goose session files live in the sessions dir (``sessions_dir``, goose's
own by default), named by the session store, which alone knows goose's format.
This module imports nothing of ours: it is the seam where another backend
(PostgreSQL) replaces the stores, not the names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EVENTS_SUFFIX = ".events.jsonl"
DELIVERY_PREFIX = "whd_"


def component(name: str) -> str:
    """``name`` as one path component of a file or folder name.

    The callers' ids are checked against their own patterns first (a session id,
    a run id); this is the last guard that no id joins a path outside its folder.

    Raises:
        ValueError: empty, ``.``, ``..``, or holding a ``/`` or a NUL.
    """
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"{name!r} cannot name a file in the data dir")
    return name


def lock_of(path: Path) -> Path:
    """The ``filelock`` file guarding ``path``: beside it, ``.lock`` appended."""
    return path.with_name(path.name + ".lock")


def changes_of(path: Path) -> Path:
    """The change counter (``storage/change_counter.py``) of ``path``: beside it, ``.changes`` appended."""
    return path.with_name(path.name + ".changes")


@dataclass(frozen=True)
class DataDir:
    root: Path
    sessions: Path   # goose's session files (the session store names them)

    @classmethod
    def at(cls, root: str | Path, sessions: str | Path) -> "DataDir":
        return cls(Path(root), Path(sessions))

    # --- single files -------------------------------------------------------------------

    @property
    def api_key(self) -> Path:
        return self.root / "api_key"

    @property
    def webhook_secret(self) -> Path:
        return self.root / "webhook_secret"

    @property
    def owners(self) -> Path:
        return self.root / "owners.jsonl"

    @property
    def owners_legacy(self) -> Path:
        return self.root / "owners.json"

    @property
    def permissions(self) -> Path:
        return self.root / "permissions.json"

    @property
    def provider(self) -> Path:
        return self.root / "provider.json"

    @property
    def extensions(self) -> Path:
        return self.root / "extensions.json"

    @property
    def auth_failures(self) -> Path:
        return self.root / "auth_failures.sqlite3"

    # --- folders ------------------------------------------------------------------------

    @property
    def session_locks(self) -> Path:
        return self.root / "locks"

    def session_lock(self, session_id: str) -> Path:
        return self.session_locks / f"{component(session_id)}.lock"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    # --- runs/ --------------------------------------------------------------------------

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def steering_changes(self) -> Path:
        return self.runs / "steering.changes"

    @property
    def auto_resume_lock(self) -> Path:
        return self.job_lock("auto_resume")

    def job_lock(self, name: str) -> Path:
        """The lock of a job one process at a time does (``auto_resume``)."""
        return self.runs / f"{name}.lock"

    def run_dir(self, session_id: str) -> Path:
        return self.runs / component(session_id)

    def run_record(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "run.json"

    def run_state_lock(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "state.lock"

    def run_events(self, session_id: str, run_id: str) -> Path:
        return self.run_dir(session_id) / f"{component(run_id)}{EVENTS_SUFFIX}"

    def run_event_logs(self, session_id: str) -> list[Path]:
        """Every event log kept for the session (in no particular order)."""
        directory = self.run_dir(session_id)
        try:
            return [directory / entry.name for entry in directory.iterdir() if entry.name.endswith(EVENTS_SUFFIX)]
        except FileNotFoundError:
            return []

    def journal(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "journal.jsonl"

    def previous_journal(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "journal.1.jsonl"

    def queue(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "queue.jsonl"

    def legacy_queue(self, session_id: str) -> Path:
        return self.run_dir(session_id) / "queue.json"

    def run_sessions(self) -> list[str]:
        """The sessions with a run record, sorted."""
        try:
            return sorted(entry.name for entry in self.runs.iterdir() if (entry / "run.json").is_file())
        except FileNotFoundError:
            return []

    def queued_sessions(self) -> list[str]:
        """The sessions with a queue file."""
        return sorted({path.parent.name for pattern in ("*/queue.jsonl", "*/queue.json")
                       for path in self.runs.glob(pattern)})

    # --- idempotency/ -------------------------------------------------------------------

    @property
    def idempotency(self) -> Path:
        return self.root / "idempotency"

    def idempotency_entry(self, digest: str) -> Path:
        return self.idempotency / f"{digest}.json"

    def idempotency_entries(self) -> list[Path]:
        return list(self.idempotency.glob("*.json"))

    def idempotency_lock(self, entry: Path) -> Path:
        """One of 256 lock files, by the entry's first two hex digits (never deleted)."""
        return self.idempotency / "locks" / f"{entry.name[:2]}.lock"

    # --- responses/ ---------------------------------------------------------------------

    @property
    def responses(self) -> Path:
        return self.root / "responses"

    def response(self, response_id: str) -> Path:
        """A stored response (the caller checked the id's pattern: it is a file name)."""
        return self.responses / f"{response_id}.json"

    # --- webhooks/ ----------------------------------------------------------------------

    @property
    def webhooks(self) -> Path:
        return self.root / "webhooks"

    @property
    def failed_webhooks(self) -> Path:
        return self.webhooks / "failed"

    def webhook_delivery(self, delivery_id: str) -> Path:
        return self.webhooks / f"{component(delivery_id)}.json"

    def failed_webhook(self, delivery: Path) -> Path:
        return self.failed_webhooks / delivery.name

    def webhook_deliveries(self) -> list[Path]:
        """Deliveries waiting, oldest id first."""
        return sorted(self.webhooks.glob(f"{DELIVERY_PREFIX}*.json"))
