"""The run journal: each tool call's steps, on disk before each step takes effect.

``<data_dir>/runs/<session_id>/journal.jsonl`` (beside the run's record, not
in the goose file), an append-only JSON Lines file (``storage/jsonl.py``: a
line a crash tore is stepped over), each entry fsynced before the step it
announces happens:

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

import os
import time
from pathlib import Path
from typing import Any

from goose_api.agent.control import FINISHED, CallState
from goose_api.storage import jsonl
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
        jsonl.append(self.path(session_id), {"time": round(time.time(), 3), **entry}, sync=sync)

    def entries(self, session_id: str, turn: str | None = None) -> list[dict[str, Any]]:
        """Complete entries (of one turn, when given), oldest first; a line a crash cut short is skipped
        (its step never took effect)."""
        return [entry for entry in jsonl.read(self.path(session_id))
                if isinstance(entry, dict) and (turn is None or entry.get("turn") == turn)]

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
