"""What we can know about a stdio server's process from outside the SDK.

The SDK spawns the process and does not expose it, so each server gets its own
stderr pipe: we keep the tail of what it writes there (to explain a failed
start) and find its pid as the child of ours whose fd 2 is that pipe (Linux
``/proc``; elsewhere the pid is simply unknown).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TextIO

from goose_api.storage.process import parent_pid

STDERR_TAIL_BYTES = 4096
STDERR_TAIL_LINES = 20
EOF_WAIT = 0.5  # how long closing waits for the last bytes of an exited server's stderr


class StderrTail:
    """A pipe for a child's stderr; remembers the last ``STDERR_TAIL_BYTES`` written to it."""

    def __init__(self) -> None:
        self.pipe_id: int | None = None
        self._buffer = bytearray()
        self._writer: TextIO | None = None
        self._transport: asyncio.ReadTransport | None = None
        self._eof = asyncio.Event()

    async def open(self) -> TextIO:
        """The write end to hand to the child; must run on the loop that will read it."""
        read_fd, write_fd = os.pipe()
        self.pipe_id = os.fstat(write_fd).st_ino
        self._writer = os.fdopen(write_fd, "w")
        loop = asyncio.get_running_loop()
        self._eof = asyncio.Event()
        self._transport, _ = await loop.connect_read_pipe(lambda: _TailProtocol(self), os.fdopen(read_fd, "rb"))
        return self._writer

    def feed(self, data: bytes) -> None:
        self._buffer += data
        del self._buffer[:-STDERR_TAIL_BYTES]

    def mark_eof(self) -> None:
        self._eof.set()

    def close_writer(self) -> None:
        """Drop our copy of the write end once the child holds its own (or will never run)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def aclose(self) -> None:
        self.close_writer()
        if self._transport is None:
            return
        try:
            await asyncio.wait_for(self._eof.wait(), EOF_WAIT)
        except asyncio.TimeoutError:
            pass  # a grandchild still holds the pipe: what we have read so far is the tail
        self._transport.close()
        self._transport = None

    def tail(self) -> str:
        lines = self._buffer.decode("utf-8", "replace").strip().splitlines()
        return "\n".join(lines[-STDERR_TAIL_LINES:])


class _TailProtocol(asyncio.Protocol):
    def __init__(self, tail: StderrTail):
        self._tail = tail

    def data_received(self, data: bytes) -> None:
        self._tail.feed(data)

    def eof_received(self) -> bool:
        self._tail.mark_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._tail.mark_eof()


def child_pid_with_stderr(pipe_id: int | None) -> int | None:
    """The pid of our child process whose stderr is the pipe with inode ``pipe_id``."""
    proc = Path("/proc")
    if pipe_id is None or not proc.is_dir():
        return None
    me, target = os.getpid(), f"pipe:[{pipe_id}]"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if parent_pid(int(entry.name)) == me and os.readlink(entry / "fd" / "2") == target:
                return int(entry.name)
        except OSError:
            continue  # exited while we looked, or not ours to read
    return None

