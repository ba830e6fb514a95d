"""Shared fixtures: isolated data dirs, a fake OpenAI API, the app, a Flask client, a live gunicorn."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from goose_api import create_app
from goose_api.settings import Settings
from tests.fakes.openai import OpenAIFake

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "test-api-key"


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("data", "sessions", "home", "work")}
    for path in paths.values():
        path.mkdir()
    return paths


@pytest.fixture
def fake_openai() -> Iterator[OpenAIFake]:
    """A scripted OpenAI chat-completions server; every scripted step must be used."""
    with OpenAIFake() as fake:
        yield fake
        fake.assert_done()


def settings_for(fake: OpenAIFake, dirs: dict[str, Path], **overrides: Any) -> Settings:
    values = dict(data_dir=str(dirs["data"]), sessions_dir=str(dirs["sessions"]), api_key=API_KEY,
                  working_dir=str(dirs["work"]), provider_retries=1, provider_retry_max_wait=0.5)
    values.update(overrides)
    return fake.settings(**values)


class ApiClient:
    """Flask's test client with the API key set, answering (status, json, response)."""

    def __init__(self, flask_client, key: str | None = API_KEY):
        self.flask = flask_client
        self.key = key

    def call(self, method: str, path: str, json: Any = None, headers: dict | None = None, **kw):
        headers = {**({"x-api-key": self.key} if self.key else {}), **(headers or {})}
        response = self.flask.open(path, method=method, json=json, headers=headers, **kw)
        return response.status_code, response.get_json(silent=True), response

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw):
        return self.call("POST", path, json=json, **kw)


@pytest.fixture
def app(fake_openai, dirs):
    application = create_app(settings_for(fake_openai, dirs))
    yield application
    application.extensions["goose_api"].close()


@pytest.fixture
def client(app) -> ApiClient:
    return ApiClient(app.test_client())


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
        return self.process.wait(timeout=timeout)


def _auth(key: str | None, headers: dict | None) -> dict:
    return {**({"x-api-key": key} if key else {}), **(headers or {})}


def start_live_server(env: dict[str, str], cwd: Path, log_path: Path, timeout: float = 30) -> LiveServer:
    """gunicorn with the project's config on a free loopback port; waits until /health answers."""
    port = int(env["PORT"]) if "PORT" in env else free_port()
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


@pytest.fixture
def live_server(fake_openai, dirs, tmp_path) -> Iterator[LiveServer]:
    server = start_live_server(live_env(fake_openai, dirs), tmp_path, tmp_path / "gunicorn.log")
    yield server
    server.stop()
