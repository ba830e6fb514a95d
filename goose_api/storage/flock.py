"""The file locks a turn takes on its hot path: a plain ``flock`` on a fresh descriptor.

Every turn takes the session's lock and its run-state lock several times.
``filelock`` 4 costs ~110 µs and ~600 Python calls per acquire and release
(singleton registry, fork tracking that calls ``getpid`` dozens of times); the
``flock`` it makes underneath costs ~4 µs (``bench/README.md``). Both use
``flock``, so this lock and a ``filelock`` on the same file exclude each other;
``filelock`` stays where locks are rare (key file, extension store, webhooks).

Each acquire opens its own descriptor, so two threads of one process exclude
each other as two processes do, and a lock may be released by another thread
than the one that took it (a run's session lock is). The OS drops the lock
when its process dies, so a crash never leaves anything locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

POLL = 0.005  # how often a waiting acquire tries again


class LockTimeout(Exception):
    """The lock was not free within the time allowed."""


class HeldLock:
    """A lock this process holds; ``release`` it once (from any thread)."""

    __slots__ = ("path", "_fd")

    def __init__(self, path: str, fd: int):
        self.path = path
        self._fd: int | None = fd

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of an flock releases it

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(path: str | Path, timeout: float = -1) -> HeldLock:
    """Lock ``path`` (created 0600 if missing, with its directory), waiting up to ``timeout`` seconds.

    ``timeout`` 0 tries once; a negative one waits as long as it takes. A lock
    file may be deleted by its holder (a deleted session's): a lock taken on a
    file that is no longer the one at ``path`` is let go of and taken again.

    Raises:
        LockTimeout: someone else held it for the whole ``timeout``.
    """
    path = os.fspath(path)
    deadline = None if timeout < 0 else time.monotonic() + timeout
    while True:
        fd = _open(path)
        try:
            if not _lock(fd, deadline):
                raise LockTimeout(path)
            if _still_at(fd, path):
                return HeldLock(path, fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder deleted it while we waited: lock the file there now


def _open(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:  # the directory only: not a system call spent on every lock
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _lock(fd: int, deadline: float | None) -> bool:
    """Lock ``fd`` before ``deadline`` (None: however long it takes); False if it stayed held."""
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)


def _still_at(fd: int, path: str) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def remove(held: HeldLock) -> None:
    """Delete the lock file of a lock we hold, then let go of it (waiters take the next file at its path)."""
    try:
        os.unlink(held.path)
    finally:
        held.release()
