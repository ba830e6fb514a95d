"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str, mode: int | None = None, sync: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), mode=mode, sync=sync)


def write_bytes(path: Path, *chunks: bytes | bytearray, mode: int | None = None, sync: bool = True) -> None:
    """Write ``chunks`` one after the other as the new content of ``path`` (temp file, fsync, rename).

    The file is created 0600 unless ``mode`` says otherwise. After the rename
    the directory is fsynced too: the new name, not only the new bytes, is on
    the disk when this returns. ``sync=False`` skips both fsyncs: still
    all-or-nothing for readers, only not yet on the disk if the machine (not
    the process) goes down in the next seconds.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the directory only: not a system call spent on every save
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync:
        sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """fsync a directory: a file created or renamed in it is still there after a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any, mode: int | None = None) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode)
