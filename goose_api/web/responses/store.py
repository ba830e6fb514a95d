"""Where responses are kept: a small interface, and its files backend (``<data_dir>/responses/``).

A stored response is a record: the session and run it stands for, where in
the run's event log it begins, the request's fields, the tool calls it
continues (after an approval) and, once settled, the final response object.
Another backend (PostgreSQL) implements the same three methods.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any, Protocol

from goose_api.storage import atomic
from goose_api.storage.data_dir import DataDir

log = logging.getLogger(__name__)

RESPONSE_ID_RE = re.compile(r"^resp_[0-9a-f]{32}$")

Record = dict[str, Any]


def new_response_id() -> str:
    return "resp_" + secrets.token_hex(16)


class ResponseStore(Protocol):
    def save(self, record: Record) -> None:
        """Create or replace the record of ``record["id"]``."""

    def load(self, response_id: str) -> Record | None:
        """The record, or None when there is none (or the id is not one of ours)."""

    def delete(self, response_id: str) -> None:
        """Forget the record (nothing happens when there is none)."""


class FileResponseStore:
    """One JSON file per response, written atomically."""

    def __init__(self, data: DataDir):
        self.data = data

    def save(self, record: Record) -> None:
        atomic.write_text(self.data.response(_checked(record["id"])), json.dumps(record, ensure_ascii=False) + "\n")

    def load(self, response_id: str) -> Record | None:
        if not RESPONSE_ID_RE.fullmatch(response_id):
            return None
        try:
            data = json.loads(self.data.response(response_id).read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:  # emptied by a machine crash between its write and the disk flush
            log.warning("unreadable response record id=%s: treated as missing", response_id)
            return None
        return data if isinstance(data, dict) else None

    def delete(self, response_id: str) -> None:
        if RESPONSE_ID_RE.fullmatch(response_id):
            self.data.response(response_id).unlink(missing_ok=True)


def _checked(response_id: str) -> str:
    if not RESPONSE_ID_RE.fullmatch(response_id):
        raise ValueError(f"not a response id: {response_id!r}")
    return response_id
