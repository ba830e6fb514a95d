"""The run journal: each tool call's steps, on disk before each step takes effect.

``<data_dir>/runs/<session_id>/journal.jsonl`` (beside the run's record, not
in the goose file), one JSON object per line, appended with ``O_APPEND`` and
fsynced before the step it announces happens:

    {"time", "turn", "run", "call", "tool", "step", ...}

A tool call goes ``requested`` (before the assistant message asking for it is
saved) → ``approved`` (``by``: ``policy`` or ``user``) → ``started`` (right
before the tool is called) → ``finished`` (with the ``toolResponse`` item,
before the answers are saved to the session). A call answered without running
(denied, skipped in chat mode, unparsable, cancelled, interrupted) goes
straight to ``finished`` with ``"ran": false``. Run entries have ``"call":
null`` and the steps ``begun`` and ``ended`` (appended, not fsynced: they
guard no tool call).

``turn`` is the id of the run that received the prompt; a resumed run keeps
it, so resuming reads every step the turn took, whichever run took it. From
that the resume knows, per tool call: finished (its saved answer is used, the
tool is not called again), started but not finished (never run again
silently), approved, or only requested.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from goose_api.agent.control import FINISHED, CallState
from goose_api.storage.data_dir import DataDir

ROTATE_BYTES = 4 * 1024 * 1024  # a new turn starts a fresh journal past this size (one old one is kept)


class RunJournal:
    def __init__(self, data: DataDir):
        self.data = data

    def path(self, session_id: str) -> Path:
        return self.data.journal(session_id)

    def write(self, session_id: str, entry: dict[str, Any], sync: bool = True) -> None:
        """Append one entry and fsync it: once this returns, the step is on disk.

        ``sync=False`` (a run's ``begun`` and ``ended``, which guard no tool
        call) only appends: it survives the process, not the machine, going down.
        """
        line = json.dumps({"time": round(time.time(), 3), **entry}, ensure_ascii=False,
                          separators=(",", ":")) + "\n"
        path = self.path(session_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the directory only: not a system call spent on every step
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self, session_id: str, turn: str | None = None) -> list[dict[str, Any]]:
        """Complete entries (of one turn, when given), oldest first; a torn last line is skipped."""
        try:
            raw = self.path(session_id).read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the line a crash cut short: its step never took effect
            if isinstance(entry, dict) and (turn is None or entry.get("turn") == turn):
                out.append(entry)
        return out

    def calls(self, session_id: str, turn: str) -> dict[str, CallState]:
        """The last step of every tool call of a turn, by call id."""
        states: dict[str, CallState] = {}
        for entry in self.entries(session_id, turn):
            call_id = entry.get("call")
            if not call_id:
                continue
            response = entry.get("response") if entry.get("step") == FINISHED else None
            states[call_id] = CallState(call_id, str(entry.get("step")), response)
        return states

    def rotate(self, session_id: str) -> None:
        """Start a fresh journal when it grew past ``ROTATE_BYTES`` (call when a new turn starts)."""
        path = self.path(session_id)
        try:
            if path.stat().st_size > ROTATE_BYTES:
                os.replace(path, self.data.previous_journal(session_id))
        except FileNotFoundError:
            pass  # nothing written yet
