"""A change counter shared by every worker process: eight bytes in the data dir, mapped into memory.

Workers share some state through files (the extensions file, the failed-auth
counts). Asking "did anything change?" with a ``stat`` or a query on every
request costs a system call, and each one lets other request threads take the
GIL: under load that hand-off, not the call, is what costs (bench/http_overhead.py).
Here a reader asks with one memory read; a writer bumps the counter after
each change it made, under a file lock so no bump is lost. The value only
means "different from before": compare it, never do arithmetic on it.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from pathlib import Path

SIZE = 8


class ChangeCounter:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()

    def value(self) -> int:
        """The current count (0 until the first change); a memory read once the file is mapped."""
        view = self._map if self._map is not None else self._mapped()
        return int.from_bytes(view[:SIZE], "little")

    def bump(self) -> None:
        """Count one change; call it after the change is visible to readers."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = int.from_bytes(os.pread(fd, SIZE, 0).ljust(SIZE, b"\0"), "little")
            os.pwrite(fd, ((current + 1) % 2**64).to_bytes(SIZE, "little"), 0)
        finally:
            os.close(fd)  # and with it the lock

    def close(self) -> None:
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None

    def _mapped(self) -> mmap.mmap:
        with self._lock:
            if self._map is None:
                fd = self._open()
                try:
                    if os.fstat(fd).st_size < SIZE:
                        os.ftruncate(fd, SIZE)  # zeros; a concurrent bump writes the same size
                    self._map = mmap.mmap(fd, SIZE, access=mmap.ACCESS_READ)  # shared: sees every bump
                finally:
                    os.close(fd)
            return self._map

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
