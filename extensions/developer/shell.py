"""Running one shell command with a timeout and a cap on the output kept.

The command runs in its own process group so a timeout kills everything it
started. Output is read as it comes (a command that prints gigabytes costs
``OUTPUT_CAP`` of memory, not gigabytes): the first and last halves of the cap
are kept and the middle is replaced by a note saying how much was left out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


def run(command: str, cwd: Path, timeout: float) -> ShellResult:
    """Run ``command`` with bash (sh if absent) in ``cwd``; stdin is empty."""
    shell = shutil.which("bash") or "/bin/sh"
    proc = subprocess.Popen([shell, "-c", command], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    outputs = (CappedOutput(), CappedOutput())
    readers = [threading.Thread(target=_drain, args=(stream, out), daemon=True)
               for stream, out in ((proc.stdout, outputs[0]), (proc.stderr, outputs[1]))]
    for reader in readers:
        reader.start()
    try:
        exit_code: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        exit_code = None
    for reader in readers:
        reader.join(DRAIN_TIMEOUT)  # a daemon it started may hold the pipes open: stop waiting
    return ShellResult(exit_code, outputs[0].text(), outputs[1].text())


def _drain(stream: IO[bytes] | None, out: CappedOutput) -> None:
    assert stream is not None
    with stream:
        while chunk := stream.read1(READ_CHUNK):  # type: ignore[attr-defined]
            out.feed(chunk)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended just now
