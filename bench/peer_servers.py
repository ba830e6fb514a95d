"""The servers bench/peers.py compares: goose-api, LangGraph's agent server and Agno's AgentOS.

The peers are installed from PyPI at bench time, each into its own venv under
``bench/.peers/`` (git-ignored; nothing of theirs is committed), at the
versions pinned below. Their agents are ``bench/peer_apps/``: a ReAct agent
with one ``echo`` tool each, on the same provider stub as goose-api. Every
server is a process tree started here, so it can be killed with SIGKILL and
started again on the same data.

Each ``Peer`` knows how to start its server and to speak its API: start a
conversation, give it a history, run a turn (blocking), and tell what became
of a conversation's run after a crash.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlencode

import requests

from bench.report import ROOT
from bench.servers import API_KEY, base_env, children, descendants, free_port

PEERS_DIR = ROOT / "bench" / ".peers"
APPS = ROOT / "bench" / "peer_apps"
REQUIREMENTS = {
    "langgraph": ["langgraph-cli[inmem]==0.4.40", "langgraph-api==0.16.7", "langgraph-runtime-inmem==0.36.7",
                  "langgraph==1.2.24", "langgraph-prebuilt==1.1.3", "langchain-openai==1.7.4"],
    "agno": ["agno==3.1.10", "fastapi==0.165.0", "uvicorn==0.54.0", "openai==3.57.0", "sqlalchemy[asyncio]==2.1.9",
             "python-multipart==0.0.34"],
}
QUIET = {"AGNO_TELEMETRY": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false",
         "LANGCHAIN_TRACING_V2": "false"}


def install(name: str) -> Path:
    """The venv of peer ``name`` (made and filled from PyPI on first use); returns its bin dir."""
    venv = PEERS_DIR / name
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS[name]) + "\n"
    if not (marker.exists() and marker.read_text() == wanted):
        print(f"peers: installing {name} into {venv} (from PyPI)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", *REQUIREMENTS[name]], check=True)
        marker.write_text(wanted)
    return venv / "bin"


@dataclass
class Running:
    """One server process tree."""

    url: str
    process: subprocess.Popen
    startup_s: float
    log_path: Path

    def pids(self) -> list[int]:
        return [self.process.pid, *descendants(self.process.pid)]

    def kill(self) -> None:
        """SIGKILL the whole tree at once: nothing gets to clean up."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Peer:
    """A server under test: how to start it and speak its API (subclasses)."""

    name: str
    data: Path
    provider_url: str
    options: dict = field(default_factory=dict)
    ready_path: ClassVar[str] = "/health"

    def command(self, port: int) -> tuple[list[str], Path, dict[str, str]]:
        raise NotImplementedError

    def start(self, timeout: float = 120) -> Running:
        port = free_port()
        cmd, cwd, env = self.command(port)
        log_path = self.data / f"{self.name}-{port}.log"
        started = time.monotonic()
        with open(log_path, "ab") as log:
            process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(url + self.ready_path, timeout=2).status_code == 200:
                    return Running(url, process, time.monotonic() - started, log_path)
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.01)
        process.kill()
        raise RuntimeError(f"{self.name} did not start within {timeout} s:\n{log_path.read_text()[-3000:]}")

    def server_pids(self, server: Running) -> list[int]:
        """The processes whose memory is the server's."""
        return server.pids()

    def headers(self) -> dict[str, str]:
        return {}

    def conversation(self, server: Running) -> str | None:
        """A new, empty conversation's id (None: the first turn makes one)."""
        return None

    def seed(self, server: Running, conversation: str, messages: int) -> str:
        """Give ``conversation`` a history of ``messages`` messages; returns its id."""
        raise NotImplementedError

    def turn(self, conn: http.client.HTTPConnection, conversation: str | None, prompt: str) -> str | None:
        """One blocking turn; returns the conversation's id (None when the turn failed)."""
        raise NotImplementedError

    def run_statuses(self, server: Running, conversation: str) -> list[str] | None:
        """The statuses of the conversation's runs, as the API lists them (None: no such conversation)."""
        raise NotImplementedError

    def _post(self, conn: http.client.HTTPConnection, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        headers = {**self.headers(), "Content-Type": content_type}
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            conn.close()  # the server closed a kept-alive connection that sat idle: a new one
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data or b"{}")
        except ValueError:
            return response.status, {}


class GooseApi(Peer):
    def command(self, port: int):
        env = base_env(self.data, OPENAI_API_KEY="bench-key", OPENAI_HOST=self.provider_url,
                       GOOSE_API_PROVIDER="openai", GOOSE_API_MODEL="gpt-4o", GOOSE_API_PROVIDER_RETRIES="0",
                       GOOSE_API_PORT=str(port), GOOSE_API_EXTENSIONS=json.dumps({"echo": {
                           "type": "stdio", "name": "echo", "cmd": sys.executable,
                           "args": [str(ROOT / "bench" / "echo_server.py")], "enabled": True}}), **self.options)
        return [sys.executable, "-m", "gunicorn", "app:app", "-c", str(ROOT / "gunicorn.conf.py")], ROOT, env

    def server_pids(self, server: Running) -> list[int]:
        return [server.process.pid, *children(server.process.pid)]  # master and workers

    def pids_apart(self, server: Running) -> list[int]:
        """Its MCP extension processes (developer, echo), reported apart from the server."""
        return [pid for worker in children(server.process.pid) for pid in descendants(worker)]

    def headers(self):
        return {"x-api-key": API_KEY}

    def seed(self, server, conversation, messages):
        from bench.session_files import write_session
        write_session(self.data / "sessions", conversation, messages, str(self.data / "work"))
        return conversation

    def turn(self, conn, conversation, prompt):
        path = "/session/reply" if conversation else "/session/start"
        body = {"prompt": prompt, **({"session_id": conversation} if conversation else {})}
        status, answer = self._post(conn, path, json.dumps(body).encode(), "application/json")
        return answer.get("session_id") if status == 200 else None

    def run_statuses(self, server, conversation):
        answer = requests.get(f"{server.url}/session/{conversation}", headers=self.headers(), timeout=30)
        if answer.status_code == 404:
            return None
        detail = answer.json()
        error = (detail.get("last_error") or {}).get("error")
        return [detail.get("state") + (f" ({error})" if error else "")]  # the session's current or last run


class LangGraph(Peer):
    ready_path = "/ok"

    def command(self, port):
        bin_dir = install("langgraph")
        config = self.data / "langgraph.json"
        config.write_text(json.dumps({"dependencies": [str(APPS)],
                                      "graphs": {"agent": f"{APPS / 'langgraph_agent.py'}:graph"}}))
        jobs = str(self.options.get("jobs", 10))
        env = {"PATH": os.environ["PATH"], "HOME": str(self.data), "BENCH_PROVIDER_URL": self.provider_url,
               **QUIET}
        return [str(bin_dir / "langgraph"), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
                "--port", str(port), "--n-jobs-per-worker", jobs, "--config", str(config)], self.data, env

    def conversation(self, server):
        return requests.post(f"{server.url}/threads", json={}, timeout=30).json()["thread_id"]

    def seed(self, server, conversation, messages):
        history = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n} of the history"}
                   for n in range(messages - 1)]
        conn = _conn(server.url)
        self._run(conn, conversation, history)
        conn.close()
        return conversation

    def turn(self, conn, conversation, prompt):
        return conversation if self._run(conn, conversation, [{"role": "user", "content": prompt}]) else None

    def _run(self, conn, thread: str, messages: list[dict]) -> bool:
        body = {"assistant_id": "agent", "input": {"messages": messages}}
        status, _ = self._post(conn, f"/threads/{thread}/runs/wait", json.dumps(body).encode(), "application/json")
        return status == 200

    def run_statuses(self, server, conversation):
        runs = requests.get(f"{server.url}/threads/{conversation}/runs", params={"limit": 1000}, timeout=30)
        if runs.status_code == 404:
            return None
        return [str(run.get("status")) for run in runs.json()]


class Agno(Peer):
    def command(self, port):
        bin_dir = install("agno")
        env = {"PATH": os.environ["PATH"], "HOME": str(self.data), "BENCH_PROVIDER_URL": self.provider_url,
               "BENCH_DB": str(self.data / "agno.db"), "PYTHONPATH": str(APPS), **QUIET}
        return [str(bin_dir / "python"), "-m", "uvicorn", "agno_app:app", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"], self.data, env

    def conversation(self, server):
        return f"bench-{time.monotonic_ns()}"

    def seed(self, server, conversation, messages):
        conn = _conn(server.url)
        for n in range(messages // 2):
            if not self.turn(conn, conversation, f"message {2 * n} of the history"):
                raise RuntimeError("agno: a history turn failed")
        conn.close()
        return conversation

    def turn(self, conn, conversation, prompt):
        form = {"message": prompt, "stream": "false", **({"session_id": conversation} if conversation else {})}
        status, answer = self._post(conn, "/agents/bench/runs", urlencode(form).encode(),
                                    "application/x-www-form-urlencoded")
        return answer.get("session_id") if status == 200 else None

    def run_statuses(self, server, conversation):
        runs = requests.get(f"{server.url}/sessions/{conversation}/runs", params={"type": "agent"}, timeout=30)
        if runs.status_code == 404:
            return None
        return [str(run.get("status")) for run in runs.json()]


def _conn(url: str) -> http.client.HTTPConnection:
    host, port = url.split("//", 1)[1].split(":")
    return http.client.HTTPConnection(host, int(port), timeout=600)
