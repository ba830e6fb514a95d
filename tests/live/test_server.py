"""The server over real HTTP: gunicorn on loopback, restarts, sessions from the goose CLI, keys."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import requests

from tests.fakes.core import Reply, ToolCall
from tests.support.app import API_KEY
from tests.support.goose_format import assert_goose_session
from tests.support.live import free_port, live_env, start_live_server

DATA = Path(__file__).resolve().parents[1] / "data"


def test_start_and_reply_over_http(live_server, fake_openai, dirs):
    fake_openai.add(Reply("hi from gunicorn"), Reply("", tool_calls=[ToolCall("a__b", {}, id="c1")]),
                    Reply("done"))
    first = live_server.post("/session/start", {"prompt": "hello"})
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"].startswith("application/json")
    assert first.json()["response"] == "hi from gunicorn"
    second = live_server.post("/session/reply", {"prompt": "use a tool"})
    assert second.status_code == 200, second.text
    assert second.json()["response"] == "done"
    assert_goose_session(dirs["sessions"] / f"{first.json()['session_id']}.jsonl")


def test_bad_requests_over_http_keep_the_server_up(live_server):
    assert live_server.post("/session/start", {"prompt": "x"}, key="wrong").status_code == 401
    raw = requests.post(live_server.url + "/session/start", data="{oops", timeout=10,
                        headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"] == "invalid_json"
    big = requests.post(live_server.url + "/session/start", data=b"x" * (11 * 1024 * 1024), timeout=30,
                        headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"
    assert live_server.get("/health").status_code == 200


def test_chunked_oversized_body_is_413(live_server):
    def body():
        for _ in range(12):
            yield b"x" * (1024 * 1024)
    answer = requests.post(live_server.url + "/session/start", data=body(), timeout=30,
                           headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert answer.headers["X-Content-Type-Options"] == "nosniff"  # answered before the app: headers too
    assert answer.headers["X-Request-ID"] and "status=413" in live_server.log_with("status=413")
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert live_server.get("/health").status_code == 200


def test_sessions_survive_a_restart(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    server = start_live_server(env, tmp_path, tmp_path / "one.log")
    fake_openai.add(Reply("before restart"))
    started = server.post("/session/start", {"prompt": "remember", "session_id": "durable"})
    assert started.status_code == 200, started.text
    assert server.stop() == 0
    server = start_live_server(env, tmp_path, tmp_path / "two.log")
    try:
        fake_openai.add(Reply("after restart"))
        replied = server.post("/session/reply", {"prompt": "still there?"})
        assert replied.status_code == 200, replied.text
        assert replied.json()["session_id"] == "durable"
        history = fake_openai.requests[-1].body["messages"]
        assert [m.get("content") for m in history[1:]] == ["remember", "before restart", "still there?"]
        _, messages = assert_goose_session(dirs["sessions"] / "durable.jsonl")
        assert len(messages) == 4
    finally:
        server.stop()


def test_a_goose_cli_session_can_be_continued(live_server, fake_openai, dirs):
    shutil.copy(DATA / "goose_cli_session.jsonl", dirs["sessions"] / "from_cli.jsonl")
    fake_openai.add(Reply("Still two files."))
    answer = live_server.post("/session/reply", {"prompt": "how many?", "session_id": "from_cli"})
    assert answer.status_code == 200, answer.text
    sent = fake_openai.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[3]["tool_call_id"] == "toolu_01A"
    meta, messages = assert_goose_session(dirs["sessions"] / "from_cli.jsonl")
    assert len(messages) == 6 and meta["accumulated_input_tokens"] >= 2900


def test_without_a_key_one_is_generated_and_kept_private(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    del env["GOOSE_API_KEY"]
    server = start_live_server(env, tmp_path, tmp_path / "nokey.log")
    try:
        key_file = dirs["data"] / "api_key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        key = key_file.read_text().strip()
        assert len(key) >= 32
        assert server.get("/provider/config", key=None).status_code == 401
        assert server.get("/provider/config", key=key).status_code == 200
        assert key not in server.log_with(str(key_file), "path=/provider/config status=200")
    finally:
        server.stop()


def test_refuses_a_public_host_without_a_key(fake_openai, dirs, tmp_path):
    import subprocess
    import sys
    env = {**live_env(fake_openai, dirs), "GOOSE_API_HOST": "0.0.0.0", "PATH": os.environ["PATH"],
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "GOOSE_API_PORT": str(free_port())}
    del env["GOOSE_API_KEY"]
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "GOOSE_API_KEY" in result.stderr


def test_port_variable_binds_for_procfile_hosts(fake_openai, dirs, tmp_path):
    port = free_port()
    env = {**live_env(fake_openai, dirs), "PORT": str(port)}
    server = start_live_server(env, tmp_path, tmp_path / "port.log")
    try:
        assert server.get("/health").status_code == 200
        assert f"Listening at: http://0.0.0.0:{port}" in server.log()
    finally:
        server.stop()
