"""Append-only JSON Lines files that survive a torn last line.

Every append-only file in the data dir (a run's event log, the run journal,
the owners index, a session's turn queue) is one JSON value a line, written
through ``append`` and read through ``read``, so they all behave alike when a
crash (kill -9, a full disk, a power loss) cuts an append short:

- a reader uses only lines that end in a newline: a last line without one is
  still being written, or was torn, and is left for later;
- a writer that finds the file not ending in a newline starts a new line
  first, so a torn fragment becomes one bad line of its own instead of
  swallowing the entry written after it;
- a complete line that is not JSON (such a fragment) is skipped and logged
  once per reader, never raised: one bad line must not take the file with it;
- a short write is completed, and a write that cannot be (``ENOSPC``) raises.

Files are created 0600: they hold conversation text. Entries are whole lines
written with one ``write`` on an ``O_APPEND`` descriptor, so appends from
several processes do not interleave.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

from goose_api.storage import atomic

log = logging.getLogger(__name__)

FILE_MODE = 0o600
REPORTS_KEPT = 1024  # bad lines remembered as logged (per process), so each is logged once


def encode(entry: Any) -> bytes:
    """One entry as its line (compact JSON, UTF-8, newline-terminated)."""
    return (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def append(path: Path, *entries: Any, sync: bool = False) -> int:
    """Append ``entries`` as lines; returns the file's size after them.

    ``sync`` fsyncs the file (and, when this call created it, its directory)
    before returning: the entries are on the disk.

    Raises:
        OSError: the lines could not be written whole (the file may end in a
            fragment, which the next append and every reader step over).
    """
    data = b"".join(encode(entry) for entry in entries)
    created = sync and not os.path.exists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except FileNotFoundError:  # the directory only: not a system call spent on every append
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        created = sync
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            log.warning("append-only file %s did not end in a newline (a torn line); starting a new line", path)
            data = b"\n" + data
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
        end = os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)
    if created:
        atomic.sync_directory(Path(path).parent)
    return end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write of {len(view)} bytes made no progress")
        view = view[written:]


class _Reports:
    """The bad lines logged already (file, inode, offset): readers come and go, a line is logged once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, int, int], None] = OrderedDict()

    def first(self, key: tuple[str, int, int]) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > REPORTS_KEPT:
                self._seen.popitem(last=False)
            return True


_reports = _Reports()


class Reader:
    """Reads one file's complete lines from a byte offset on."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset  # bytes of complete lines already read
        self._inode = 0

    def read(self) -> list[Any]:
        """The entries of the complete lines written since the last read (none if the file is missing)."""
        try:
            with open(self.path, "rb") as fh:
                self._inode = os.fstat(fh.fileno()).st_ino
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # a last line without its newline is still being written (or torn)
        entries = list(self._parse(chunk[:end]))
        self.offset += end
        return entries

    def _parse(self, chunk: bytes) -> Iterable[Any]:
        start = 0
        for line in chunk.split(b"\n")[:-1]:
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    self._report(self.offset + start, line)
            start += len(line) + 1

    def _report(self, offset: int, line: bytes) -> None:
        if _reports.first((str(self.path), self._inode, offset)):
            log.warning("skipped a line of %s that is not JSON (offset %d, %d bytes): a torn append",
                        self.path, offset, len(line))


def read(path: Path) -> list[Any]:
    """Every entry of the file's complete lines, oldest first (a missing file has none)."""
    return Reader(path).read()


def rewrite(path: Path, entries: list[Any]) -> None:
    """Replace the file with ``entries`` (atomically: temp file, fsync, rename); no entries removes it."""
    if entries:
        atomic.write_bytes(path, b"".join(encode(entry) for entry in entries), mode=FILE_MODE)
    else:
        Path(path).unlink(missing_ok=True)
