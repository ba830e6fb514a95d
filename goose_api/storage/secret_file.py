"""Secrets the server makes for itself (an API key, a webhook signing key) and keeps in the data dir."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from filelock import FileLock

from goose_api.storage import atomic
from goose_api.storage.data_dir import lock_of

log = logging.getLogger(__name__)


def stored_secret(path: Path, what: str) -> str:
    """The secret kept in ``path`` (mode 0600), made on first use (under a lock: workers start together).

    ``what`` names it in the log line ("API key"); the secret itself is never logged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_of(path))):
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            key = ""
        if not key:
            key = secrets.token_urlsafe(32)
            atomic.write_text(path, key + "\n", mode=0o600)
            log.warning("no %s configured; generated one and saved it in %s (mode 0600)", what, path)
        else:
            log.info("no %s configured; using the generated one kept in %s", what, path)
    return key
