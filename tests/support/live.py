"""A real gunicorn on a free loopback port, started with the project's own config."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.openai import OpenAIFake
from tests.support.app import API_KEY, ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: Path

    def get(self, path: str, key: str | None = API_KEY, **kw) -> requests.Response:
        return requests.get(self.url + path, headers=_auth(key, kw.pop("headers", None)), timeout=30, **kw)

    def post(self, path: str, json: Any = None, key: str | None = API_KEY, **kw) -> requests.Response:
        return requests.post(self.url + path, json=json, headers=_auth(key, kw.pop("headers", None)),
                             timeout=kw.pop("timeout", 60), **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_with(self, *texts: str, timeout: float = 10.0) -> str:
        """The log once every one of ``texts`` is in it (the server writes its INFO lines in batches)."""
        deadline, log = time.monotonic() + timeout, self.log()
        while not all(text in log for text in texts):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {texts} in the server's log")
            time.sleep(0.02)
            log = self.log()
        return log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Reaped here, so that no later test inherits a live server (or its Popen's warning).
            for pid in (*_children(self.process.pid), self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"gunicorn did not stop within {timeout} s of signal {sig}; its log ends:\n"
                        + "\n".join(self.log().splitlines()[-60:]))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _auth(key: str | None, headers: dict | None) -> dict:
    return {**({"x-api-key": key} if key else {}), **(headers or {})}


def start_live_server(env: dict[str, str], cwd: Path, log_path: Path, timeout: float = 30) -> LiveServer:
    """gunicorn with the project's config on a free loopback port; waits until /health answers."""
    port = int(env["PORT"]) if "PORT" in env else int(env.get("GOOSE_API_PORT") or free_port())
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "GOOSE_API_HOST": "127.0.0.1",
                "GOOSE_API_PORT": str(port), **env}
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "app:app", "-c",
                                    str(ROOT / "gunicorn.conf.py")],
                                   cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}:\n{server.log()}")
        try:
            if requests.get(server.url + "/health", timeout=2).status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):
            pass  # the master listens before its workers have booted
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"gunicorn did not answer /health within {timeout}s:\n{server.log()}")


def live_env(fake: OpenAIFake, dirs: dict[str, Path], **extra: str) -> dict[str, str]:
    return {"HOME": str(dirs["home"]), "GOOSE_API_KEY": API_KEY, "GOOSE_API_DATA_DIR": str(dirs["data"]),
            "GOOSE_API_SESSIONS_DIR": str(dirs["sessions"]), "GOOSE_API_WORKING_DIR": str(dirs["work"]),
            "GOOSE_API_PROVIDER": "openai", "GOOSE_API_PROVIDER_RETRIES": "1",
            **fake.env(), **extra}
