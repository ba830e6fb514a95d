"""Runs one page's blocks, in order, against a real gunicorn whose model is the fake OpenAI API.

As a reader would: the server generates its key into ``~/.local/share/goose-api/api_key`` (HOME is a temp
dir), ``KEY`` holds it, ``GOOSE_API_URL`` names the server, ``goose-api`` and ``python`` are the project's
virtualenv. The server listens on a free port: ``127.0.0.1:8080`` in a block becomes that port. Shell
blocks of a page share their exported variables; Python blocks share one namespace.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from goose_api.settings import Settings
from tests.docs.markdown import DATA, ROOT, Block, Command, body_of, commands, shape
from tests.fakes.core import Reply, ToolCall
from tests.fakes.openai import OpenAIFake
from tests.support.live import LiveServer, free_port, start_live_server

VENV_BIN = str(Path(sys.executable).parent)
HARNESS_VARIABLES = ("HOME", "PATH", "KEY", "GOOSE_API_URL", "GOOSE_API_MASTER_PID")
DOCS_PORT = "8080"


class HookReceiver:
    """A webhook receiver on loopback (``{hook}`` in a block's ``replace``): records each POST, answers 204."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PageRun:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home, self.work, self.out = tmp / "home", tmp / "work", tmp / "out"
        for path in (self.home, self.work, self.out):
            path.mkdir()
        self.fake = OpenAIFake().start()
        self.hook = HookReceiver()
        self.server: LiveServer | None = None
        self.port = str(free_port())  # kept across restarts: a client made by an earlier block still reaches it
        self.mcp: subprocess.Popen | None = None
        self.server_settings: dict[str, str] = {}
        self.namespace: dict[str, Any] = {"__name__": "__docs__"}
        self.state = self.out / "exported.sh"
        self.state.write_text("")
        self.count = 0
        self.hook_used = False

    # --- the server ------------------------------------------------------------------------------
    def start(self, settings: dict[str, str] | None = None) -> None:
        if self.server is not None:
            assert self.server.stop() == 0, self.server.log()
        if settings is not None:
            self.server_settings = settings
        env = {"HOME": str(self.home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "GOOSE_API_PORT": self.port,
               "GOOSE_API_PROVIDER_RETRIES": "1", **self.fake.server_env(), **self.server_settings}
        self.server = start_live_server(env, self.work, self.tmp / "gunicorn.log")

    def close(self) -> None:
        try:
            if self.hook_used:
                self.check_delivery()
            if self.server is not None:
                assert self.server.stop() == 0, self.server.log()
            self.fake.assert_done()
        finally:
            self.fake.stop()
            self.hook.close()
            if self.mcp is not None:
                self.mcp.terminate()
                self.mcp.wait(10)

    def mcp_server(self) -> str:
        """A streamable-HTTP MCP server on loopback (``{mcp_url}``): the benchmarks' one-tool echo server."""
        port = free_port()
        if self.mcp is None:
            self.mcp = subprocess.Popen([sys.executable, str(ROOT / "bench" / "echo_server.py"), "http", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.mcp_url = f"http://127.0.0.1:{port}/mcp"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.mcp.poll() is None:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        return self.mcp_url
                time.sleep(0.05)
            pytest.fail(f"the MCP echo server did not listen (exit {self.mcp.poll()})")
        return self.mcp_url

    def check_delivery(self) -> None:
        """The webhook a block asked for arrived, and the docs' own ``valid`` (if the page defines it) accepts it."""
        deadline = time.monotonic() + 30
        while not self.hook.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.hook.received, "the webhook the docs asked for was never delivered"
        delivery = self.hook.received[0]
        assert json.loads(delivery["body"])["type"] == "done"
        if "valid" in self.namespace:
            secret = (self.home / ".local/share/goose-api/webhook_secret").read_text().strip()
            assert self.namespace["valid"](secret, delivery["headers"], delivery["body"])
            assert not self.namespace["valid"](secret, delivery["headers"], delivery["body"] + b" ")

    @property
    def key(self) -> str:
        """The key the server generated (none when the page configures keys itself)."""
        path = self.home / ".local/share/goose-api/api_key"
        return path.read_text().strip() if path.exists() else ""

    def shell_env(self, **extra: str) -> dict[str, str]:
        assert self.server is not None
        return {"HOME": str(self.home), "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "LANG": "C.UTF-8",
                "KEY": self.key, "GOOSE_API_URL": self.server.url, "GOOSE_API_MASTER_PID": str(self.server.process.pid),
                **extra}

    # --- one block -------------------------------------------------------------------------------
    def run(self, block: Block) -> None:
        options = block.options
        if "covered_by" in options:
            return check_covered(block)
        if block.lang in DATA:
            return check_data(block)
        if self.server is None or "server" in options:
            self.start(options.get("server", self.server_settings))
        serve_port = str(free_port()) if options.get("serves") else None
        text = self.substitute(block.text, options.get("replace", {}), serve_port)
        self.fake.add(*(step(item) for item in options.get("model", [])))
        if "given" in options:
            self.sh_script(block, self.substitute(options["given"], {}), check_answers=False)
        if serve_port is not None:
            self.serve(block, text, serve_port)
        elif block.lang == "sh":
            self.sh_script(block, text, check_answers=True)
        elif block.lang == "python":
            self.python(block, text)
        else:
            pytest.fail(f"{block.where}: a ```{block.lang} block can be neither run nor checked")
        deadline = time.monotonic() + 30  # an async turn asks the model after its block has answered
        while self.fake.steps and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not self.fake.steps, f"{block.where}: the model replies it names were not all asked for: " \
                                    f"{self.fake.steps}"
        assert not self.fake.violations, f"{block.where}: {self.fake.violations}"

    def substitute(self, text: str, replace: dict[str, str], port: str | None = None) -> str:
        """``replace`` applied, and the docs' port 8080 made this page's server's (or ``port``)."""
        assert self.server is not None
        values = {"{venv}": str(Path(sys.executable).parent.parent), "{hook}": self.hook.url, "{fake_url}": self.fake.base_url, "{fake_key}": self.fake.api_key,
                  "{work}": str(self.work)}
        self.hook_used = self.hook_used or any("{hook}" in real for real in replace.values())
        if any("{mcp_url}" in real for real in replace.values()):
            values["{mcp_url}"] = self.mcp_server()
        for shown, real in replace.items():
            assert shown in text, f"'{shown}' is not in the block any more"
            for name, value in values.items():
                real = real.replace(name, value)
            text = text.replace(shown, real)
        if port is not None:
            return text.replace(f":{DOCS_PORT}", f":{port}")
        return text.replace(f"127.0.0.1:{DOCS_PORT}", self.server.url.removeprefix("http://"))

    def sh_script(self, block: Block, text: str, check_answers: bool) -> None:
        steps = commands(text)
        env = self.shell_env()
        script = ["set -o pipefail", f'. "{self.state}"',  # the page's exported variables, then this server's
                  "export " + " ".join(f"{name}={shlex.quote(env[name])}" for name in HARNESS_VARIABLES)]
        for n, command in enumerate(steps):
            base = self.out / f"{self.count}-{n}"
            script.append(f"{{ {command.text}\n}} >'{base}.out' 2>'{base}.err'; rc=$?; echo $rc >'{base}.rc'; "
                          f"[ $rc = 0 ] || exit $rc")
        script.append(f"export -p >'{self.state}'")
        result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=self.work, env=env,
                                capture_output=True, text=True, timeout=120)
        for n, command in enumerate(steps):
            base = self.out / f"{self.count}-{n}"
            where = f"{block.where} (line {block.line + command.line}: {command.text.splitlines()[0]})"
            rc = int((base.with_suffix(".rc")).read_text()) if base.with_suffix(".rc").exists() else None
            assert rc == 0, f"{where} exited {rc}:\n{_read(base, '.err')}{_read(base, '.out')}{result.stderr}"
            if check_answers:
                check_answer(where, command, _read(base, ".out"), block.options.get("errors", False))
        assert result.returncode == 0, f"{block.where}: {result.stderr}"
        self.count += 1

    def python(self, block: Block, text: str) -> None:
        saved = {name: os.environ.get(name) for name in ("HOME", "KEY", "GOOSE_API_URL")}
        cwd = os.getcwd()
        try:
            os.environ.update({name: self.shell_env()[name] for name in saved})
            os.chdir(self.work)
            exec(compile(text, block.where, "exec"), self.namespace)
        finally:
            os.chdir(cwd)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def serve(self, block: Block, text: str, port: str) -> None:
        """A block that runs a server in the foreground: started on ``port`` with its own HOME."""
        home = self.tmp / f"serve-home-{self.count}"
        home.mkdir()
        env = {**self.shell_env(), "HOME": str(home), "GOOSE_API_PORT": port}
        process = subprocess.Popen(["bash", "-c", text], cwd=ROOT, env=env, start_new_session=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_health(url, process, block.where)
            key = (home / ".local/share/goose-api/api_key")
            headers = {"x-api-key": key.read_text().strip()} if key.exists() else {}
            answer = requests.get(url + "/provider/config", headers=headers, timeout=30)
            assert answer.status_code == 200 and answer.json()["configured"], f"{block.where}: {answer.text}"
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            output = process.communicate(timeout=60)[0].decode(errors="replace")
        assert process.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), f"{block.where}:\n{output}"
        assert not (home / ".gunicorn").exists(), f"{block.where}: gunicorn made a control socket in HOME"
        self.count += 1


def wait_for_health(url: str, process: subprocess.Popen, where: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{where}: the server exited with {process.returncode}:\n"
                        f"{process.stdout.read().decode(errors='replace') if process.stdout else ''}")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    pytest.fail(f"{where}: no /health answer within {timeout} s")


def step(item: str | dict[str, Any]) -> Reply:
    """One fake model reply: a text, or ``{"tool", "args", "id"}`` (a tool call), or ``{"text"}``."""
    if isinstance(item, str):
        return Reply(item)
    if "tool" in item:
        return Reply(item.get("text", ""), tool_calls=[ToolCall(item["tool"], item.get("args", {}), id=item.get("id"))])
    return Reply(item["text"])


def check_answer(where: str, command: Command, output: str, errors_shown: bool) -> None:
    if command.expected_text is not None:
        assert output.strip() == command.expected_text, f"{where}: printed {output!r}"
    status, body = body_of(output)
    if command.expected_status is not None:
        assert status == command.expected_status, f"{where}: answered {status}, the docs show " \
                                                  f"{command.expected_status}:\n{output}"
    elif status is not None:
        assert status < 400 or errors_shown, f"{where}: answered {status}:\n{output}"
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("status") == "error":
        assert errors_shown or command.expected_json, f"{where}: answered an error:\n{output}"
    if command.expected_json is None:
        return
    assert isinstance(answer, (dict, list)), f"{where}: the docs show JSON, the answer is:\n{output}"
    if isinstance(answer, list):
        return
    keys, values = shape(command.expected_json)
    missing = keys - set(answer)
    assert not missing, f"{where}: the answer lacks {sorted(missing)} the docs show:\n{output}"
    differ = {key: answer[key] for key, value in values.items() if answer[key] != value}
    assert not differ, f"{where}: the answer has {differ}, the docs show {values}"


def check_covered(block: Block) -> None:
    path, _, name = block.options["covered_by"].partition("::")
    test_file = ROOT / path
    assert test_file.is_file() and f"def {name}(" in test_file.read_text(), \
        f"{block.where}: covered_by names {block.options['covered_by']}, which does not exist"


def check_data(block: Block) -> None:
    """Data shown in the docs parses; a YAML block of settings is a config file the server accepts."""
    if block.lang == "json":
        json.loads(block.text)
    elif block.lang == "ini":
        configparser.ConfigParser(strict=True, interpolation=None).read_string(block.text)
    elif block.lang == "yaml":
        data = yaml.safe_load(block.text)
        known = {f for f in Settings.__dataclass_fields__} - {"env", "sources", "files"}
        if isinstance(data, dict) and set(data) <= known:
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "config.yaml").write_text(block.text)
                Settings.load(environ={"HOME": tmp}, cwd=tmp)


def _read(base: Path, suffix: str) -> str:
    path = base.with_suffix(suffix)
    return path.read_text(errors="replace") if path.exists() else ""
