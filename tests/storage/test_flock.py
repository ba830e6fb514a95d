"""The hot-path file lock: exclusion between threads and processes, timeouts, release from any thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from filelock import FileLock, Timeout

from goose_api.storage import flock
from tests.support.mcp_fixtures import wait_until


def test_two_threads_exclude_each_other_and_timeout_zero_tries_once(tmp_path):
    path = tmp_path / "deep" / "dir" / "s.lock"
    held = flock.acquire(path, timeout=0)
    with pytest.raises(flock.LockTimeout):
        flock.acquire(path, timeout=0)
    began = time.monotonic()
    with pytest.raises(flock.LockTimeout):
        flock.acquire(path, timeout=0.2)
    assert time.monotonic() - began >= 0.2
    released = threading.Thread(target=held.release)
    released.start()
    released.join()
    assert not held.is_locked
    with flock.acquire(path, timeout=0) as again:
        assert again.is_locked
    assert not again.is_locked
    held.release()  # a second release is harmless


def _blocked_on(path) -> bool:
    """Whether the kernel lists a process or thread blocked on the flock of ``path`` (``->`` in /proc/locks)."""
    inode = os.stat(path).st_ino
    with open("/proc/locks", encoding="ascii") as locks:
        return any("->" in line and f":{inode} " in line for line in locks)


def test_a_waiting_acquire_gets_the_lock_once_it_is_released(tmp_path):
    path = tmp_path / "s.lock"
    held = flock.acquire(path)
    order: list[str] = []

    def waiter() -> None:
        with flock.acquire(path):  # no timeout: it blocks in the kernel until the holder lets go
            order.append("waiter")
    thread = threading.Thread(target=waiter)
    thread.start()
    wait_until(lambda: _blocked_on(path), 10, "the waiter to block on the lock")
    order.append("holder")
    held.release()
    thread.join(10)
    assert order == ["holder", "waiter"]


def test_it_excludes_filelock_and_another_process_and_dies_with_its_process(tmp_path):
    path = tmp_path / "s.lock"
    with flock.acquire(path):
        with pytest.raises(Timeout):
            FileLock(str(path), thread_local=False).acquire(timeout=0)
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; from goose_api.storage import flock; flock.acquire(sys.argv[1]); "
                              "print('held', flush=True); time.sleep(60)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(flock.LockTimeout):
            flock.acquire(path, timeout=0)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    flock.acquire(path, timeout=5).release()


def test_a_lock_file_deleted_by_its_holder_is_taken_afresh_by_whoever_waited(tmp_path):
    """A deleted session removes its lock file while holding it; the thread that waited on the old file must not
    think it holds the lock next to someone who opened the new file at the same path."""
    path = tmp_path / "s.lock"
    held = flock.acquire(path, timeout=0)
    taken: list[flock.HeldLock] = []
    waiter = threading.Thread(target=lambda: taken.append(flock.acquire(path)))  # blocks in the kernel
    waiter.start()
    wait_until(lambda: _blocked_on(path), 10, "the waiter to block on the old lock file")
    flock.remove(held)
    waiter.join(30)
    assert taken and taken[0].is_locked and path.exists()
    with pytest.raises(flock.LockTimeout):
        flock.acquire(path, timeout=0)  # the waiter holds the file now at the path: nobody else gets it
    taken[0].release()
    flock.acquire(path, timeout=0).release()
