"""Process identity: who holds a lease or a claim, and whether that process is still there.

An identity is ``{"pid", "started", "host"}``: ``started`` (clock ticks since
boot, from /proc) tells a reused pid from its first owner, as a restarted
container numbers its processes alike. Only identities of this host can be
checked; another host's are judged by their heartbeat instead.
"""

from __future__ import annotations

import os
import socket
from typing import Any

HOST = socket.gethostname()
_HAS_PROC = os.path.isdir("/proc/self")
_own_start: dict[int, int | None] = {}  # by pid: a forked worker reads its own once


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie awaiting its reaper counts as gone).

    Runs before every tool call, so it costs two system calls where it can:
    each one lets the MCP loop thread take the GIL in between.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not _HAS_PROC:
        return True  # no /proc here: the signal check is all we have
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return False  # gone since the signal check
    try:
        stat = os.read(fd, 4096)
    finally:
        os.close(fd)
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def _stat_field(pid: int, index: int) -> int | None:
    """A numeric field of ``/proc/<pid>/stat`` counted after the command name (``index`` 1: the parent pid).

    The command name (field 2) may hold spaces and parentheses: the fields are split after the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[index])
    except (OSError, IndexError, ValueError):
        return None


def process_start(pid: int) -> int | None:
    """When a process started (clock ticks since boot, from /proc), or None where that cannot be read."""
    return _stat_field(pid, 19)


def parent_pid(pid: int) -> int | None:
    """The pid of the process's parent (from /proc), or None where that cannot be read."""
    return _stat_field(pid, 1)


def identity() -> dict[str, Any]:
    """This process: pid, its start time and the host."""
    pid = os.getpid()
    if pid not in _own_start:
        _own_start[pid] = process_start(pid)
    return {"pid": pid, "started": _own_start[pid], "host": HOST}


def is_gone(owner: dict[str, Any]) -> bool | None:
    """Whether the process an identity names has died (or its pid was reused).

    None when it cannot tell: another host's process, or no pid recorded.
    """
    pid = owner.get("pid")
    if owner.get("host") != HOST or not isinstance(pid, int):
        return None
    if not pid_alive(pid):
        return True
    started = process_start(pid)
    return owner.get("started") is not None and started is not None and started != owner["started"]
