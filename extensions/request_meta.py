"""What the builtin servers read from a request's ``_meta``.

goose-api sends the session's working directory with every tool call (under
its own key and under the one goose's servers read); a server started by some
other client falls back to its own working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WORKING_DIR_META_KEYS = ("goose-api/working_dir", "agent-working-dir")
DATA_DIR_ENV = "GOOSE_API_DATA_DIR"


def working_dir(ctx: Any) -> Path:
    """The directory the request asks us to work in, else this process's cwd."""
    return given_working_dir(ctx) or Path.cwd()


def given_working_dir(ctx: Any) -> Path | None:
    """The directory the request asks us to work in, if it names one."""
    meta = getattr(getattr(ctx, "request_context", None), "meta", None) or {}
    for key in WORKING_DIR_META_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value:
            return Path(value)
    return None


def data_dir() -> Path:
    """goose-api's data dir, passed by the registry; goose's config dir when run by hand."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else Path.home() / ".config" / "goose"
