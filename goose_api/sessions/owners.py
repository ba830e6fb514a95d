"""Who owns each session: a side index in the data dir, so the goose file stays goose's.

The index only records owners; ``access.py`` decides who may use a session.

The index is ``<data_dir>/owners.jsonl``: one line per change,
``{"session": id, "owner": key name}`` (``"owner": null`` once forgotten),
an append-only JSON Lines file (``storage/jsonl.py``: a line a crash tore is
stepped over, the next claim still lands), each line fsynced. A line is one
``write``, so lines from several workers never interleave and no lock is needed; a claim costs one small
write however many sessions exist (rewriting a whole index under one lock made
every session start wait for all the others: bench/concurrency.py). Readers
apply the lines added since they last looked (a stat when nothing changed). An
``owners.json`` index from an earlier version is read first.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Mapping

from goose_api.storage import jsonl

log = logging.getLogger(__name__)


class SessionOwners:
    def __init__(self, path: Path, legacy_path: Path):
        self.path = path
        self.legacy_path = legacy_path
        self._cache_lock = threading.Lock()
        self._inode: int | None = None
        self._reader = jsonl.Reader(path)  # the log's lines already applied
        self._owners: dict[str, str] = {}

    def owner(self, session_id: str) -> str | None:
        return self._read().get(session_id)

    def current(self) -> Mapping[str, str]:
        """Every session's owner, by session id (only ``get`` from it: it changes in place)."""
        return self._read()

    def claim(self, session_id: str, owner: str) -> None:
        """Record ``owner`` (a key's name) as the owner of a session just created."""
        self._append(session_id, owner)

    def forget(self, session_id: str) -> None:
        self._append(session_id, None)

    def _append(self, session_id: str, owner: str | None) -> None:
        jsonl.append(self.path, {"session": session_id, "owner": owner}, sync=True)

    # --- reading -------------------------------------------------------------------

    def _read(self) -> dict[str, str]:
        """The owners; only ``get`` it (it is updated in place as the log grows)."""
        with self._cache_lock:
            return self._load()

    def _load(self) -> dict[str, str]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._inode, self._reader, self._owners = None, jsonl.Reader(self.path), self._legacy()
            return self._owners
        if st.st_ino != self._inode:  # the first look, or the log was replaced
            self._inode, self._reader, self._owners = st.st_ino, jsonl.Reader(self.path), self._legacy()
        if st.st_size > self._reader.offset:
            for entry in self._reader.read():  # a line still being written waits for the next look
                self._apply(entry)
        return self._owners

    def _apply(self, entry: Any) -> None:
        try:
            session_id, owner = entry["session"], entry["owner"]
        except (KeyError, TypeError):
            return  # not a line of ours: skip it rather than lose every owner after it
        if owner is None:
            self._owners.pop(str(session_id), None)
        else:
            self._owners[str(session_id)] = str(owner)

    def _legacy(self) -> dict[str, str]:
        try:
            data = json.loads(self.legacy_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("the old owners index %s is not JSON; its sessions are the admin's only", self.legacy_path)
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
