"""Running one shell command with a timeout and a cap on the output kept.

The command runs in its own process group (and, sandboxed, in its own pid
namespace: ``sandbox.py``) so a timeout kills everything it started, and what
it leaves running in the background is killed when it ends. Output is read as
it comes (a command that prints gigabytes costs ``OUTPUT_CAP`` of memory, not
gigabytes): the first and last halves of the cap are kept and the middle is
replaced by a note saying how much was left out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from extensions.developer.sandbox import Sandbox

_running: set[int] = set()  # process groups of the commands running now (stopped with this server)
_lock = threading.Lock()

OUTPUT_CAP = 40_000       # bytes kept per stream
DRAIN_TIMEOUT = 5.0       # after the command ends, how long to wait for its pipes to close
READ_CHUNK = 65536


class CappedOutput:
    """Keeps the head and the tail of a byte stream, and counts what falls between."""

    def __init__(self, cap: int = OUTPUT_CAP):
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self._half = cap // 2

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        del self.tail[:-self._half]

    def text(self) -> str:
        omitted = self.total - len(self.head) - len(self.tail)
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if omitted <= 0:
            return head + tail
        return (f"{head}\n[... {omitted} bytes omitted: the output was {self.total} bytes, more than the "
                f"{self._half * 2} kept. Redirect it to a file and look at parts of it (grep, head, tail) ...]\n{tail}")


@dataclass
class ShellResult:
    exit_code: int | None     # None when the command was killed for taking too long
    stdout: str
    stderr: str

    def render(self, timeout: float) -> str:
        status = (f"The command timed out after {timeout:g} s and was killed." if self.exit_code is None
                  else f"Exit code: {self.exit_code}")
        parts = [status]
        for label, text in (("stdout", self.stdout), ("stderr", self.stderr)):
            if text.strip():
                parts.append(f"--- {label} ---\n{text.rstrip()}")
        if len(parts) == 1:
            parts.append("(no output)")
        return "\n".join(parts)


def run(command: str, cwd: Path, timeout: float, sandbox: Sandbox | None = None) -> ShellResult:
    """Run ``command`` with bash (sh if absent) in ``cwd`` under ``sandbox``; stdin is empty."""
    shell = shutil.which("bash") or "/bin/sh"
    sandbox = sandbox or Sandbox()
    proc = subprocess.Popen(sandbox.argv(shell, command, cwd), cwd=cwd, env=sandbox.process_env(),
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    with _lock:
        _running.add(proc.pid)
    outputs = (CappedOutput(), CappedOutput())
    readers = [threading.Thread(target=_drain, args=(stream, out), daemon=True)
               for stream, out in ((proc.stdout, outputs[0]), (proc.stderr, outputs[1]))]
    for reader in readers:
        reader.start()
    finished = _exited(proc.pid, timeout)
    _kill_group(proc.pid)  # on a timeout, the command; else what it left in the background
    with _lock:
        _running.discard(proc.pid)
    exit_code: int | None = proc.wait()
    if not finished:
        exit_code = None
    for reader in readers:
        reader.join(DRAIN_TIMEOUT)  # a daemon it started may hold the pipes open: stop waiting
    return ShellResult(exit_code, outputs[0].text(), outputs[1].text())


def _drain(stream: IO[bytes] | None, out: CappedOutput) -> None:
    assert stream is not None
    with stream:
        while chunk := stream.read1(READ_CHUNK):  # type: ignore[attr-defined]
            out.feed(chunk)


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for the shell to exit, without reaping it.

    While it is not reaped its id cannot be reused, so killing its process group
    afterwards reaches the processes it left behind and nothing else.
    """
    deadline, delay = time.monotonic() + timeout, 0.001
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)
    return True


def stop_all() -> None:
    """Kill every command still running, and what it started: this server is stopping."""
    with _lock:
        groups = list(_running)
    for pid in groups:
        _kill_group(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended just now
