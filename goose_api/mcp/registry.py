"""ExtensionRegistry: the agent's view of its tools, over every configured MCP server.

Synchronous and thread-safe for its callers. The set of extensions is shared by
all worker processes through ``extensions.json`` (``store.py``); each process
keeps its own live connections and brings them in line with that file on every
public call (a stat when nothing changed). Connections are made lazily, on
first use in each process, never at import or construction.

Tools reach the model as ``<extension key>__<tool>``; a call is routed by the
exact key. A server that crashed is marked failed and keeps its last tool list,
so the model can still call it and the next call restarts it once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from goose_api.errors import ApiError, BadRequest, NotFound, ToolCallFailed
from goose_api.mcp.client import McpConnection, stop_all
from goose_api.mcp.config import DEFAULT_TIMEOUT
from goose_api.mcp.content import error_text, to_goose_content
from goose_api.mcp.launch import Launcher, compact, configured_extensions, extension_key
from goose_api.mcp.store import Configs, ExtensionStore, Signature
from goose_api.providers.base import ToolSpec
from goose_api.settings import Settings
from goose_api.storage.interfaces import ExtensionStorage

log = logging.getLogger(__name__)

# Request _meta keys carrying the session's working dir: ours, and the one goose's own servers read.
WORKING_DIR_META_KEYS = ("goose-api/working_dir", "agent-working-dir")
_NEVER: Any = object()
CLOSE_WAIT = 10.0
RECHECK_SECONDS = 1.0  # how soon a hand edit of extensions.json is noticed (API changes are at once)


@dataclass
class _Extension:
    key: str
    config: dict[str, Any]
    connection: McpConnection | None = None
    last_error: str | None = None
    ceiling: float = float("inf")  # ``max_extension_timeout``

    @property
    def running(self) -> bool:
        return self.connection is not None and self.connection.alive

    @property
    def timeout(self) -> float:
        return min(float(self.config.get("timeout", DEFAULT_TIMEOUT)), self.ceiling)

    def tool_specs(self) -> list[ToolSpec]:
        tools = self.connection.tools if self.connection is not None else []
        return [ToolSpec(name=f"{self.key}__{tool.name}", description=tool.description or "",
                         input_schema=tool.input_schema,
                         annotations=tool.annotations.model_dump(mode="json", by_alias=True, exclude_none=True)
                         if tool.annotations else {})
                for tool in tools]


class ExtensionRegistry:
    """Every extension of this service: add, remove, list, tools, and tool calls."""

    def __init__(self, settings: Settings, store: ExtensionStorage | Path):
        """``store``: the extension configs every worker shares (a path: the extensions file there)."""
        self._settings = settings
        self._launcher = Launcher(settings)
        self._store = ExtensionStore(store, configured_extensions(settings)) if isinstance(store, Path) else store
        self._extensions: dict[str, _Extension] = {}
        self._synced: Signature | None = _NEVER
        self._synced_changes, self._recheck_at = -1, 0.0
        self._pid = os.getpid()
        self._lock = threading.RLock()       # guards _extensions and _synced
        self._sync_lock = threading.Lock()   # one connect/disconnect sequence at a time

    # --- the shared state -------------------------------------------------------

    def ensure_loaded(self) -> None:
        """Bring this process's connections in line with extensions.json.

        Runs on every request, so when nothing changed it costs a memory read (the
        store's change counter) and, at most once per ``RECHECK_SECONDS``, a stat
        that also catches a hand edit of the file.
        """
        self._forget_parent_after_fork()
        if self._synced is not _NEVER:
            changes = self._store.changes()
            if changes == self._synced_changes and time.monotonic() < self._recheck_at:
                return
            if self._store.signature() == self._synced:
                self._synced_changes, self._recheck_at = changes, time.monotonic() + RECHECK_SECONDS
                return
        with self._sync_lock:
            changes = self._store.changes()
            if self._synced is not _NEVER and self._store.signature() == self._synced:
                return
            configs, signature = self._store.load()
            self._reconcile(configs)
            with self._lock:
                self._synced = signature
                self._synced_changes, self._recheck_at = changes, time.monotonic() + RECHECK_SECONDS

    def _reconcile(self, configs: Configs) -> None:
        """Stop what the file no longer has; start (in parallel) what is new or changed."""
        with self._lock:
            current = dict(self._extensions)
        for key in current.keys() - configs.keys():
            self._drop(key)
        pending = {key: config for key, config in configs.items()
                   if key not in current or current[key].config != config}
        if not pending:
            return
        with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="mcp-start") as pool:
            starts = {key: pool.submit(self._connect, key, config) for key, config in pending.items()}
        for key, start in starts.items():
            try:
                self._put(key, pending[key], start.result())
            except ApiError as exc:
                log.warning("extension %s could not start: %s", key, exc.message.splitlines()[0])
                self._put(key, pending[key], None, exc.message)

    def _forget_parent_after_fork(self) -> None:
        """In a forked child the parent's connections and loop are not ours: start afresh."""
        if os.getpid() == self._pid:
            return
        self._pid = os.getpid()
        self._lock, self._sync_lock = threading.RLock(), threading.Lock()
        self._extensions, self._synced = {}, _NEVER
        self._store = self._store.fresh()  # a file lock must not be shared with the parent

    def _connect(self, key: str, config: dict[str, Any]) -> McpConnection:
        connection = McpConnection(key, self._launcher.spec(config))
        connection.start(min(float(config.get("timeout", DEFAULT_TIMEOUT)), self._settings.max_extension_timeout))
        return connection

    def _put(self, key: str, config: dict[str, Any], connection: McpConnection | None,
             error: str | None = None) -> None:
        with self._lock:
            old = self._extensions.get(key)
            self._extensions[key] = _Extension(key, config, connection, error, self._settings.max_extension_timeout)
        if old is not None and old.connection is not None and old.connection is not connection:
            old.connection.stop()

    def _drop(self, key: str) -> None:
        with self._lock:
            old = self._extensions.pop(key, None)
        if old is not None and old.connection is not None:
            old.connection.stop()
        log.info("extension %s removed", key)

    # --- add / remove / list ----------------------------------------------------

    def add(self, config: dict[str, Any]) -> None:
        """Start the extension (connect and list its tools), then keep it for every worker.

        ``config`` is an ExtensionConfig already loaded by ``ExtensionConfigSchema``.
        An existing extension of the same name is replaced; on failure it is kept.

        Raises:
            ExtensionError: the server could not be started or reached (nothing is kept).
            Forbidden: a command, arguments, ``envs`` or URL the launch policy refuses (``launch.py``).
            BadRequest: ``env_keys`` missing from the environment, an unknown builtin, or a ``timeout`` over
                ``max_extension_timeout``.
        """
        ceiling = self._settings.max_extension_timeout
        if float(config.get("timeout", DEFAULT_TIMEOUT)) > ceiling:
            raise BadRequest(f"timeout must be at most {ceiling:g} seconds (max_extension_timeout)")
        self.ensure_loaded()
        config = compact(config)
        key = extension_key(config["name"])
        with self._sync_lock:
            connection = self._connect(key, config)

            def keep(configs: Configs) -> bool:
                configs[key] = config
                return True
            try:
                self._store.update(keep)
            except BaseException:
                connection.stop()
                raise
            self._put(key, config, connection)
        log.info("extension %s added (%s, %d tools)", key, config["type"], len(connection.tools))

    def remove(self, name: str) -> None:
        """Stop the extension's server and forget it, in every worker.

        Raises:
            NotFound: no extension has that name.
        """
        self.ensure_loaded()
        key = extension_key(name)
        with self._sync_lock:
            if not self._store.update(lambda configs: configs.pop(key, None) is not None):
                raise NotFound(f"There is no extension named {name!r}; the extensions are: "
                               f"{', '.join(self._names()) or 'none'}")
            self._drop(key)

    def names(self) -> list[str]:
        self.ensure_loaded()
        return self._names()

    def _names(self) -> list[str]:
        with self._lock:
            return sorted(ext.config["name"] for ext in self._extensions.values())

    def details(self) -> list[dict[str, Any]]:
        """Name, type, status, tools and last error of each extension; never env or header values."""
        self.ensure_loaded()
        with self._lock:
            extensions = sorted(self._extensions.values(), key=lambda e: e.key)
        return [{"name": ext.config["name"], "key": ext.key, "type": ext.config["type"],
                 "status": "running" if ext.running else "failed",
                 "tools": [spec.name for spec in ext.tool_specs()],
                 "last_error": None if ext.running else (ext.last_error or _fault(ext)),
                 "timeout": ext.timeout, "env_keys": sorted(ext.config.get("env_keys", [])),
                 "pid": ext.connection.pid if ext.running and ext.connection else None}
                for ext in extensions]

    def tools(self) -> list[ToolSpec]:
        """Every tool offered to the model, as ``<extension>__<tool>`` (failed ones keep their last list)."""
        self.ensure_loaded()
        with self._lock:
            extensions = sorted(self._extensions.values(), key=lambda e: e.key)
        return [spec for ext in extensions for spec in ext.tool_specs()]

    def instructions(self) -> dict[str, str]:
        """Each running server's instructions, by extension key, for the system prompt."""
        self.ensure_loaded()
        with self._lock:
            extensions = list(self._extensions.values())
        return {ext.key: ext.connection.instructions for ext in extensions
                if ext.running and ext.connection and ext.connection.instructions}

    # --- tool calls -------------------------------------------------------------

    def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None = None, *,
                  working_dir: str | None = None, on_notification: Callable[[dict[str, Any]], None] | None = None,
                  cancel_event: threading.Event | None = None) -> list[dict[str, Any]]:
        """Call ``<extension>__<tool>`` and return goose toolResult content.

        ``timeout`` defaults to the extension's; ``working_dir`` travels in the
        request ``_meta``; ``on_notification`` gets progress and log events (in
        this thread); setting ``cancel_event`` abandons the call.

        Raises:
            ToolCallFailed: unknown tool, an error result (its text), a timeout,
                a crash, or "cancelled".
        """
        self.ensure_loaded()
        ext, tool = self._route(name)
        connection = ext.connection if ext.running else self._restart(ext.key)
        if connection is None or tool not in {t.name for t in connection.tools}:
            raise ToolCallFailed(f"Unknown tool {name!r}: extension {ext.key!r} has no tool {tool!r}")
        meta = {key: working_dir for key in WORKING_DIR_META_KEYS} if working_dir else None
        try:
            result = connection.call_tool(tool, arguments, timeout or ext.timeout, meta=meta,
                                          on_notification=on_notification, cancel_event=cancel_event)
        except ToolCallFailed:
            if not connection.alive:
                log.warning("extension %s failed during %s: %s", ext.key, tool, connection.fault)
            raise
        if result.is_error:
            raise ToolCallFailed(error_text(result))
        return to_goose_content(result)

    def _route(self, name: str) -> tuple[_Extension, str]:
        with self._lock:
            for key in sorted(self._extensions, key=len, reverse=True):  # longest key first
                if name.startswith(key + "__"):
                    return self._extensions[key], name[len(key) + 2:]
            known = ", ".join(sorted(self._extensions)) or "none"
        raise ToolCallFailed(f"Unknown tool {name!r}: tool names are <extension>__<tool>; the extensions are: {known}")

    def _restart(self, key: str) -> McpConnection:
        """Start a failed extension again, once; the caller reports the error if this fails."""
        with self._sync_lock:
            with self._lock:
                ext = self._extensions.get(key)
            if ext is None:
                raise ToolCallFailed(f"Extension {key!r} was removed")
            if ext.running and ext.connection is not None:
                return ext.connection  # another thread restarted it meanwhile
            log.info("extension %s is not running (%s); restarting it", key, ext.last_error or _fault(ext))
            try:
                connection = self._connect(key, ext.config)
            except ApiError as exc:
                ext.last_error = exc.message
                raise ToolCallFailed(f"Extension {key!r} is not running and could not be restarted: "
                                     f"{exc.message}") from None
            self._put(key, ext.config, connection)
            return connection

    # --- shutdown ---------------------------------------------------------------

    def close(self) -> None:
        """Close every connection and stop every server process this process started.

        Waits at most ``CLOSE_WAIT`` for an add or restart in progress; a server it
        starts after that is still stopped when the interpreter exits (``loop.py``).
        """
        if os.getpid() != self._pid:
            return  # a forked child must not stop its parent's servers
        locked = self._sync_lock.acquire(timeout=CLOSE_WAIT)
        try:
            with self._lock:
                extensions = list(self._extensions.values())
                self._extensions, self._synced = {}, _NEVER
            stop_all([ext.connection for ext in extensions if ext.connection is not None])
        finally:
            if locked:
                self._sync_lock.release()
        log.info("extension registry closed (%d extensions)", len(extensions))


def _fault(ext: _Extension) -> str | None:
    return ext.connection.fault if ext.connection is not None else None
