"""extensions.json: the extension configs that every worker process runs.

Workers are separate processes, so the set of extensions lives in one file in
the data dir: writers hold a ``filelock`` lock and replace the file atomically
(``storage/atomic.py``), then bump a shared change counter
(``change_counter.py``); readers compare the counter (a memory read) to notice a
change, and a cheap stat signature to confirm one or to catch a hand edit. The file holds ``envs`` values, so it is created mode 0600.

The file is seeded from the settings' ``extensions`` map (goose's config.yaml
format). When that map changes, the extensions it names are applied again and
the ones it no longer names are removed; extensions added through the API are
left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from goose_api.errors import ConfigurationError
from goose_api.storage import atomic
from goose_api.storage.change_counter import ChangeCounter
from goose_api.storage.data_dir import changes_of, lock_of

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOCK_TIMEOUT = 30.0
Configs = dict[str, dict[str, Any]]
Signature = tuple[int, int, int]


class ExtensionStore:
    """Reads and writes ``<data_dir>/extensions.json`` under a cross-process lock."""

    def __init__(self, path: Path, seed: Configs):
        self.path = path
        self._lock = FileLock(str(lock_of(path)), timeout=LOCK_TIMEOUT)
        self._changes = ChangeCounter(changes_of(path))
        self._seed = seed
        self._seed_hash = hashlib.sha256(json.dumps(seed, sort_keys=True).encode()).hexdigest()

    def fresh(self) -> "ExtensionStore":
        """The same store with its own lock object (after a fork)."""
        return ExtensionStore(self.path, self._seed)

    def changes(self) -> int:
        """A number that moves whenever any process writes the file (see ``change_counter.py``)."""
        return self._changes.value()

    def signature(self) -> Signature | None:
        """Changes whenever the file is replaced; ``None`` while it does not exist."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self) -> tuple[Configs, Signature | None]:
        """The configs by extension key, and the signature of the file they came from."""
        with self._lock:
            document = self._read()
            if document.get("seed", {}).get("hash") != self._seed_hash:
                document = self._apply_seed(document)
                self._write(document)
            return document["extensions"], self.signature()

    def update(self, change: Callable[[Configs], bool]) -> bool:
        """Apply ``change`` to the configs in place; write them back (atomically) if it returns True."""
        with self._lock:
            document = self._read()
            if document.get("seed", {}).get("hash") != self._seed_hash:
                document = self._apply_seed(document)
            if not change(document["extensions"]):
                return False
            self._write(document)
            return True

    def _read(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "extensions": {}}
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"Cannot read {self.path}: {exc}; fix or delete it") from exc
        if not isinstance(document, dict) or not isinstance(document.get("extensions"), dict):
            raise ConfigurationError(f"{self.path} is not an extensions file; fix or delete it")
        return document

    def _apply_seed(self, document: dict[str, Any]) -> dict[str, Any]:
        extensions = dict(document["extensions"])
        for key in document.get("seed", {}).get("keys", []):
            if key not in self._seed:
                extensions.pop(key, None)
        extensions.update(self._seed)
        log.info("extensions file %s seeded from the configuration (%s)", self.path,
                 ", ".join(sorted(self._seed)) or "none")
        return {"version": FORMAT_VERSION, "seed": {"hash": self._seed_hash, "keys": sorted(self._seed)},
                "extensions": extensions}

    def _write(self, document: dict[str, Any]) -> None:
        before = self.signature()
        atomic.write_text(self.path, json.dumps(document, indent=2, sort_keys=True), mode=0o600)  # it holds envs
        if self.signature() == before and before is not None:
            # Same size, a reused inode and a coarse clock tick: make the change visible anyway.
            os.utime(self.path, ns=(before[0] + 1, before[0] + 1))
        self._changes.bump()
