"""Tool approval: goose's modes, and the tools a user chose to always allow.

Modes (setting ``mode``; goose's ``GOOSE_MODE``):
  - ``auto``: every tool call runs.
  - ``approve``: every tool call waits for ``POST /session/<id>/confirm``.
  - ``smart_approve``: calls to tools whose MCP annotations say ``readOnlyHint``
    run; the rest wait.
  - ``chat``: no tools are offered; a call the model makes anyway is answered
    with goose's chat-mode text.
A tool confirmed with ``always_allow`` runs without asking from then on, for
the key that started the turn only (another key's turns still ask), in every
worker: the choices are kept in ``<data_dir>/permissions.json`` as
``{"keys": {"<key name>": ["<tool>", ...]}}``. The global list an earlier
version kept (``{"always_allow": [...]}``) is read as the ``default`` key's.
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


LEGACY_KEY = "default"  # whose choices the global list of an earlier version was: the api_key holder's


class ToolPermissions:
    """The tools each key always allows, shared by every worker through one JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[tuple[int, int] | None, dict[str, frozenset[str]]] = (None, {})

    def always_allowed(self, tool: str, key: str | None) -> bool:
        """Whether ``key`` chose always_allow for ``tool`` (a turn of no known key: never)."""
        return key is not None and tool in self._read().get(key, frozenset())

    def allow_always(self, tool: str, key: str | None) -> None:
        """Remember ``tool`` for ``key``'s turns; a turn of no known key remembers nothing."""
        if key is None:
            return
        with FileLock(str(lock_of(self.path)), thread_local=False):
            keys = {name: set(tools) for name, tools in self._read().items()}
            keys.setdefault(key, set()).add(tool)
            atomic.write_json(self.path, {"keys": {name: sorted(tools) for name, tools in sorted(keys.items())}})
        log.info("tool always allowed tool=%s key=%s", tool, key)

    def _read(self) -> dict[str, frozenset[str]]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        stamp = (st.st_ino, st.st_mtime_ns)
        if self._cache[0] != stamp:
            self._cache = (stamp, _parse(json.loads(self.path.read_text(encoding="utf-8"))))
        return self._cache[1]


def _parse(data: object) -> dict[str, frozenset[str]]:
    if not isinstance(data, dict):
        return {}
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    out = {str(name): frozenset(t for t in tools if isinstance(t, str))
           for name, tools in keys.items() if isinstance(tools, list)}
    legacy = data.get("always_allow")
    if isinstance(legacy, list):
        out[LEGACY_KEY] = out.get(LEGACY_KEY, frozenset()) | {t for t in legacy if isinstance(t, str)}
    return out


class ApprovalPolicy:
    """Decides, per tool call, whether it runs, waits for the user, or is skipped."""

    def __init__(self, mode: str, permissions: ToolPermissions):
        self.mode = mode
        self.permissions = permissions

    def offered(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        """The tools the model may see: none in chat mode."""
        return [] if self.mode == CHAT else tools

    def verdict(self, name: str, tools: list[ToolSpec], key: str | None) -> str:
        """RUN, ASK or SKIP for a call to ``name`` in a turn of ``key`` (``tools``: the specs offered this turn)."""
        if self.mode == CHAT:
            return SKIP
        if self.mode == AUTO or self.permissions.always_allowed(name, key):
            return RUN
        if self.mode == SMART_APPROVE:
            spec = next((t for t in tools if t.name == name), None)
            if spec is not None and spec.annotations.get("readOnlyHint") is True:
                return RUN
        return ASK
