"""pid_alive: what the registry checks before every tool call."""

from __future__ import annotations

import subprocess
import sys

from goose_api.storage.process import pid_alive
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
