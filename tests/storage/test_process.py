"""pid_alive: what the registry checks before every tool call."""

from __future__ import annotations

import os
import subprocess
import sys

from goose_api.storage.process import identity, is_gone, parent_pid, pid_alive, process_start
from tests.support.mcp_fixtures import wait_until


def test_a_running_process_is_alive_and_a_zombie_or_reaped_one_is_not():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert pid_alive(child.pid)
        child.stdin.close()  # it exits; unreaped, it is a zombie
        wait_until(lambda: not pid_alive(child.pid), 10, "the exited child to count as gone")
    finally:
        child.wait(10)
    assert not pid_alive(child.pid)


def test_identity_start_time_and_parent_come_from_proc(tmp_path):
    """A command name with spaces and a ')' does not shift the fields read after it."""
    odd = tmp_path / "odd) name"
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert parent_pid(child.pid) == os.getpid()
        started = process_start(child.pid)
        assert isinstance(started, int) and started >= process_start(os.getpid())
        mine = identity()
        assert mine["pid"] == os.getpid() and mine["started"] == process_start(os.getpid())
        assert is_gone(mine) is False and is_gone({**mine, "started": mine["started"] + 1}) is True
        assert is_gone({**mine, "host": "another-host"}) is None, "another host's process cannot be checked here"
    finally:
        child.stdin.close()
        child.wait(10)
    assert parent_pid(child.pid) is None and process_start(child.pid) is None
