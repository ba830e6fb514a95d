"""Tool approval: goose's modes, and the tools a user chose to always allow.

Modes (setting ``mode``; goose's ``GOOSE_MODE``):
  - ``auto``: every tool call runs.
  - ``approve``: every tool call waits for ``POST /session/<id>/confirm``.
  - ``smart_approve``: calls to tools whose MCP annotations say ``readOnlyHint``
    run; the rest wait.
  - ``chat``: no tools are offered; a call the model makes anyway is answered
    with goose's chat-mode text.
A tool confirmed with ``always_allow`` runs without asking from then on, in
every worker: the choice is kept in ``<data_dir>/permissions.json``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from filelock import FileLock

from goose_api.providers.base import ToolSpec
from goose_api.storage import atomic
from goose_api.storage.data_dir import lock_of

log = logging.getLogger(__name__)

AUTO, APPROVE, SMART_APPROVE, CHAT = "auto", "approve", "smart_approve", "chat"
RUN, ASK, SKIP = "run", "ask", "skip"
ALLOW_ONCE, ALWAYS_ALLOW, DENY = "allow_once", "always_allow", "deny"
ACTIONS = (ALLOW_ONCE, ALWAYS_ALLOW, DENY)


class ToolPermissions:
    """The tools the user always allows, shared by every worker through one JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[tuple[int, int] | None, frozenset[str]] = (None, frozenset())

    def always_allowed(self, tool: str) -> bool:
        return tool in self._read()

    def allow_always(self, tool: str) -> None:
        with FileLock(str(lock_of(self.path)), thread_local=False):
            tools = set(self._read()) | {tool}
            atomic.write_json(self.path, {"always_allow": sorted(tools)})
        log.info("tool always allowed tool=%s", tool)

    def _read(self) -> frozenset[str]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return frozenset()
        stamp = (st.st_ino, st.st_mtime_ns)
        if self._cache[0] != stamp:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            tools = data.get("always_allow", []) if isinstance(data, dict) else []
            self._cache = (stamp, frozenset(t for t in tools if isinstance(t, str)))
        return self._cache[1]


class ApprovalPolicy:
    """Decides, per tool call, whether it runs, waits for the user, or is skipped."""

    def __init__(self, mode: str, permissions: ToolPermissions):
        self.mode = mode
        self.permissions = permissions

    def offered(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        """The tools the model may see: none in chat mode."""
        return [] if self.mode == CHAT else tools

    def verdict(self, name: str, tools: list[ToolSpec]) -> str:
        """RUN, ASK or SKIP for a call to ``name`` (``tools``: the specs offered this turn)."""
        if self.mode == CHAT:
            return SKIP
        if self.mode == AUTO or self.permissions.always_allowed(name):
            return RUN
        if self.mode == SMART_APPROVE:
            spec = next((t for t in tools if t.name == name), None)
            if spec is not None and spec.annotations.get("readOnlyHint") is True:
                return RUN
        return ASK
