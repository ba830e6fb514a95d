"""Fixtures and helpers for the MCP tests: registries on temp data dirs, real servers, process checks.

Every server here is real: our builtins, ``tests/fakes/misbehaving_server.py``,
``mcp-server-time`` from PyPI and ``@modelcontextprotocol/server-everything``
from npm (``tests/package.json``, installed by ``npm ci`` into tests/node_modules; never fetched at test time).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from goose_api.mcp.registry import ExtensionRegistry
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir
from goose_api.storage.process import pid_alive

ROOT = Path(__file__).resolve().parents[2]
MISBEHAVING = str(ROOT / "tests" / "fakes" / "misbehaving_server.py")
EVERYTHING = ROOT / "tests" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
NO_DEVELOPER = {"developer": {"enabled": False}}
LOOPBACK = ("127.0.0.1",)  # extension_hosts for the URL servers these tests start on this machine


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": str(data_dir), "extensions": NO_DEVELOPER, "env": {}}
    values.update(overrides)
    return Settings(**values)


def registry_for(settings: Settings) -> ExtensionRegistry:
    """A registry on the settings' data dir, as ``Services.build`` makes it."""
    return ExtensionRegistry(settings, DataDir.at(settings.data_dir, settings.sessions_dir).extensions)


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., ExtensionRegistry]]:
    """Build registries on one temp data dir (like workers of one service); all closed at the end."""
    made: list[ExtensionRegistry] = []

    def build(**overrides: Any) -> ExtensionRegistry:
        registry = registry_for(make_settings(tmp_path / "data", **overrides))
        made.append(registry)
        return registry

    yield build
    for registry in made:
        registry.close()


def python_server(name: str, *args: str, **fields: Any) -> dict[str, Any]:
    """A stdio ExtensionConfig running a Python script or module with this interpreter."""
    return {"type": "stdio", "name": name, "cmd": sys.executable, "args": list(args), "timeout": 20, **fields}


def misbehaving(name: str = "fake", mode: str = "ok", **fields: Any) -> dict[str, Any]:
    return python_server(name, MISBEHAVING, mode, **fields)


def pids_of(registry: ExtensionRegistry) -> dict[str, int]:
    return {d["key"]: d["pid"] for d in registry.details() if d["pid"] is not None}


def assert_all_gone(pids: Any, timeout: float = 10.0) -> None:
    for pid in pids:
        wait_until(lambda: not pid_alive(pid), timeout, f"process {pid} to exit")


def processes_named(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (``exec -a <marker> ...`` names one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone while we looked
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node() -> str:
    path = shutil.which("node")
    if path is None or not EVERYTHING.is_file():
        pytest.fail("server-everything is not installed: run `make install-dev` (npm ci in tests/; needs node)")
    return path


@contextlib.contextmanager
def everything_server(transport: str) -> Iterator[str]:
    """Run server-everything over ``sse`` or ``streamableHttp`` on a free port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([node(), str(EVERYTHING), transport], env={**os.environ, "PORT": str(port)},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: proc.poll() is not None or accepts_connections(port), 30, "server-everything to listen")
        if proc.poll() is not None:
            pytest.fail(f"server-everything exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def everything_stdio(name: str = "everything") -> dict[str, Any]:
    return {"type": "stdio", "name": name, "cmd": node(), "args": [str(EVERYTHING), "stdio"], "timeout": 30}


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
