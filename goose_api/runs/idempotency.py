"""Idempotency keys: a POST sent again with the same ``Idempotency-Key`` is answered, not redone.

Each key has a file in ``<data_dir>/idempotency/``, named by a hash of the
client key's name and the Idempotency-Key (so keys are scoped per client and
no key appears on disk), read and changed under its own file lock, so every
worker and a restarted server agree:

    {"fingerprint", "created", "expires", "owner": {pid, host, started},
     "state": "pending" | "done", "run": {session_id, run_id, after} | null,
     "response": {"status", "headers", "body"} | {"stream": true} | null}

The first request writes ``pending``; a turn records its run as soon as it has
one; the answer is stored when it is sent. A request with the same key and
the same method, path and body gets the stored answer (``done``), or attaches
to the run (``pending`` with a run: it waits for, or streams, that same run),
or waits a little for the first request to get that far. A different request
with the same key is 422. Entries expire after ``idempotency_ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from goose_api.errors import IdempotencyInProgress, IdempotencyKeyReused
from goose_api.storage import atomic, process
from goose_api.storage.data_dir import DataDir

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 10.0
IN_PROGRESS_WAIT = 10.0   # how long a repeat waits for the first request to start its run or answer
IN_PROGRESS_RETRY_AFTER = "1"
NEW, REPLAY, ATTACH = "new", "replay", "attach"


@dataclass(frozen=True)
class Claim:
    """What to do with a request: ``new`` (answer it; ``path`` is its entry), ``replay`` or ``attach``."""

    action: str
    path: Any  # the entry's handle in its store (the file backend: its path)
    entry: dict[str, Any]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and query, and the body (JSON compared by value)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + canonical).hexdigest()


class IdempotencyStore:
    def __init__(self, data: DataDir, ttl: float):
        self.data = data
        data.idempotency_lock(data.idempotency_entry("00")).parent.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl

    def _path(self, client: str, key: str) -> Path:
        return self.data.idempotency_entry(hashlib.sha256(f"{client}\0{key}".encode()).hexdigest()[:40])

    def claim(self, client: str, key: str, print_: str, wait: float = IN_PROGRESS_WAIT) -> Claim:
        """Decide what a request carrying ``key`` gets.

        Raises:
            IdempotencyKeyReused: the key came with a different request.
            IdempotencyInProgress: the first request with it is still working and has no run yet.
        """
        path = self._path(client, key)
        deadline = time.monotonic() + wait
        while True:
            with self._locked(path):
                entry = self._read(path)
                if entry is not None and entry["fingerprint"] != print_:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request (method, path or body); "
                        "use a new key for a new request")
                if entry is None or _abandoned(entry):
                    entry = {"fingerprint": print_, "created": time.time(), "expires": time.time() + self.ttl,
                             "owner": process.identity(), "state": "pending", "run": None, "response": None}
                    self._write(path, entry)
                    return Claim(NEW, path, entry)
                if entry["state"] == "done":
                    return Claim(REPLAY, path, entry)
                if entry.get("run"):
                    return Claim(ATTACH, path, entry)
            if time.monotonic() >= deadline:
                raise IdempotencyInProgress("A request with this Idempotency-Key is still being answered; "
                                            "retry shortly", headers={"Retry-After": IN_PROGRESS_RETRY_AFTER})
            time.sleep(0.05)

    def attach_run(self, path: Path, session_id: str, run_id: str, after: int) -> None:
        """The request started (or joined) a run: repeats attach to it."""
        self._change(path, lambda e: e.update(run={"session_id": session_id, "run_id": run_id, "after": after}))

    def finish(self, path: Path, response: dict[str, Any]) -> None:
        self._change(path, lambda e: e.update(state="done", response=response))

    def drop(self, path: Path) -> None:
        """Forget a key whose request left nothing to replay (a repeat is then a new request)."""
        with self._locked(path):
            self._delete(path)

    def sweep(self) -> int:
        """Delete expired entries; returns how many."""
        removed = 0
        for path in self.data.idempotency_entries():
            with self._locked(path):
                if path.exists() and self._read(path) is None:
                    removed += 1
        return removed

    def count(self) -> int:
        """Entries kept now (expired ones included until a sweep)."""
        return len(self.data.idempotency_entries())

    def _write(self, path: Path, entry: dict[str, Any]) -> None:
        atomic.write_json(path, entry)

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def _change(self, path: Path, change) -> None:
        with self._locked(path):
            entry = self._read(path)
            if entry is not None:
                change(entry)
                self._write(path, entry)

    def _locked(self, path: Path) -> FileLock:
        """The lock of an entry: one of 256 lock files by the entry's first hex digits (never deleted)."""
        return FileLock(str(self.data.idempotency_lock(path)), thread_local=False, timeout=LOCK_TIMEOUT)

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The entry, or None when there is none or it expired (an expired one is deleted)."""
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("unreadable idempotency entry %s: dropped", path.name)
            entry = {"expires": 0}
        if not isinstance(entry, dict) or entry.get("expires", 0) < time.time():
            path.unlink(missing_ok=True)
            return None
        return entry


def _abandoned(entry: dict[str, Any]) -> bool:
    """A pending entry without a run whose process died: its request never got an answer."""
    if entry["state"] != "pending" or entry.get("run"):
        return False
    return bool(process.is_gone(entry.get("owner") or {}))
