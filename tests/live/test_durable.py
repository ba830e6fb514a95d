"""Durable runs on a real gunicorn: kill -9 at every point of a turn, restart, resume; no tool ever runs twice.

The tool is the developer extension's shell appending a line to a file per run,
so counting lines counts executions; the run journal must agree.
"""

from __future__ import annotations

import json
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from goose_api.conversation import INTERRUPTED_TEXT
from goose_api.runs.journal import RunJournal
from goose_api.storage.data_dir import DataDir
from tests.fakes.core import Reply
from tests.live.test_runs import kill_hard, shell
from tests.support.app import API_KEY
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session
from tests.support.live import live_env, start_live_server
from tests.support.mcp_fixtures import wait_until


def lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def record(dirs, session_id: str) -> dict:
    path = dirs["data"] / "runs" / session_id / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def started(dirs, session_id: str, call_id: str) -> int:
    return sum(1 for e in RunJournal(DataDir.at(dirs["data"], dirs["sessions"])).entries(session_id)
               if e.get("call") == call_id and e["step"] == "started")


def crash_and_restart(server, env, dirs, tmp_path, session_id: str):
    """kill -9 the whole server, start it again; its start-up sweep (nobody asks) marks the run interrupted."""
    kill_hard(server)
    assert record(dirs, session_id)["state"] in ("running", "waiting_approval"), "the crash left it running"
    server = start_live_server(env, tmp_path, tmp_path / f"after-{uuid.uuid4().hex[:6]}.log")
    wait_until(lambda: record(dirs, session_id)["state"] == "interrupted", 20, "the sweep to mark it interrupted")
    return server


@pytest.mark.timeout(180)
def test_kill_during_a_provider_call_then_resume(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    server = start_live_server(env, tmp_path, tmp_path / "before.log")
    gate = Gate()
    fake_openai.add(Reply("", tool_calls=[shell("echo a >> a.txt", "ta")]), Reply("never delivered", gate=gate))
    assert server.post("/session/start", {"prompt": "go", "session_id": "kp", "async": True}).status_code == 202
    gate.wait_reached()
    server = crash_and_restart(server, env, dirs, tmp_path, "kp")
    gate.open()  # its answer goes to a dead worker
    try:
        fake_openai.add(Reply("done after the crash"))
        answer = server.post("/session/kp/resume", {})
        assert answer.status_code == 200 and answer.json()["response"] == "done after the crash", answer.text
        assert lines(dirs["work"] / "a.txt") == 1 and started(dirs, "kp", "ta") == 1
        _, messages = assert_goose_session(dirs["sessions"] / "kp.jsonl")
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    finally:
        server.stop()


@pytest.mark.timeout(180)
def test_kill_during_a_tool_call_then_resume(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    server = start_live_server(env, tmp_path, tmp_path / "before.log")
    fake_openai.add(Reply("", tool_calls=[shell("echo t >> t.txt && sleep 30", "tt")]))
    assert server.post("/session/start", {"prompt": "go", "session_id": "kt", "async": True}).status_code == 202
    wait_until(lambda: lines(dirs["work"] / "t.txt") == 1, 20, "the tool call")
    server = crash_and_restart(server, env, dirs, tmp_path, "kt")
    try:
        shown = server.get("/session/kt").json()
        assert shown["state"] == "interrupted" and shown["last_error"]["reason"] == "owner_gone", shown
        fake_openai.add(Reply("the tool was cut"))
        answer = server.post("/session/kt/resume", {})
        assert answer.status_code == 200, answer.text
        assert answer.json()["messages"][0]["content"][0]["toolResult"] == {"status": "error",
                                                                            "error": INTERRUPTED_TEXT}
        assert lines(dirs["work"] / "t.txt") == 1 and started(dirs, "kt", "tt") == 1
        assert_goose_session(dirs["sessions"] / "kt.jsonl")
    finally:
        server.stop()


@pytest.mark.timeout(180)
def test_kill_between_the_provider_call_and_the_tool_call_then_resume(fake_openai, dirs, tmp_path):
    """approve mode: the first call ran, the second waits for approval (asked for, not started) when the kill comes."""
    env = live_env(fake_openai, dirs, GOOSE_API_MODE="approve")
    server = start_live_server(env, tmp_path, tmp_path / "before.log")
    fake_openai.add(Reply("", tool_calls=[shell("echo a >> a.txt", "ca"), shell("echo b >> b.txt", "cb")]))
    waiting = server.post("/session/start", {"prompt": "go", "session_id": "kb"}).json()
    assert [p["id"] for p in waiting["pending_approvals"]] == ["ca"], waiting
    waiting = server.post("/session/kb/confirm", {"id": "ca", "action": "allow_once"}).json()
    assert [p["id"] for p in waiting["pending_approvals"]] == ["cb"], waiting
    assert lines(dirs["work"] / "a.txt") == 1
    server = crash_and_restart(server, env, dirs, tmp_path, "kb")
    try:
        resumed = server.post("/session/kb/resume", {}).json()
        assert [p["id"] for p in resumed["pending_approvals"]] == ["cb"], resumed
        fake_openai.add(Reply("both ran once"))
        done = server.post("/session/kb/confirm", {"id": "cb", "action": "allow_once"})
        assert done.status_code == 200 and done.json()["response"] == "both ran once", done.text
        answers = {r["id"]: r["toolResult"]["status"] for r in done.json()["messages"][0]["content"]}
        assert answers == {"ca": "success", "cb": "success"}
        assert (lines(dirs["work"] / "a.txt"), lines(dirs["work"] / "b.txt")) == (1, 1)
        assert (started(dirs, "kb", "ca"), started(dirs, "kb", "cb")) == (1, 1)
        assert_goose_session(dirs["sessions"] / "kb.jsonl")
    finally:
        server.stop()


def test_a_retry_after_a_dropped_connection_makes_one_run(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    server = start_live_server(env, tmp_path, tmp_path / "idem.log")
    try:
        gate = Gate()
        fake_openai.add(Reply("", tool_calls=[shell("echo once >> once.txt", "c1")]), Reply("one run", gate=gate))
        headers = {"x-api-key": API_KEY, "Idempotency-Key": str(uuid.uuid4())}
        body = {"prompt": "do it once", "session_id": "idem"}
        with pytest.raises(requests.ReadTimeout):  # the answer is held: the client gives up, the run goes on
            requests.post(server.url + "/session/start", json=body, headers=headers, timeout=1)
        gate.open()
        retried = requests.post(server.url + "/session/start", json=body, headers=headers, timeout=30)
        assert retried.status_code == 200 and retried.json()["response"] == "one run", retried.text
        assert retried.headers["Idempotent-Replayed"] == "true"
        again = requests.post(server.url + "/session/start", json=body, headers=headers, timeout=30)
        assert again.json() == retried.json()
        assert len(fake_openai.requests) == 2 and lines(dirs["work"] / "once.txt") == 1
        other = requests.post(server.url + "/session/start", json={**body, "prompt": "x"}, headers=headers, timeout=30)
        assert other.status_code == 422
    finally:
        server.stop()


def test_sigterm_answers_the_waiting_request_and_exits_without_the_graceful_timeout(fake_openai, dirs, tmp_path):
    # A 10-minute graceful timeout: the worker must not need it (nor the step budget within it).
    env = live_env(fake_openai, dirs, GOOSE_API_GRACEFUL_TIMEOUT="600")
    server = start_live_server(env, tmp_path, tmp_path / "term.log")
    gate = Gate()
    fake_openai.add(Reply("Running it.", tool_calls=[shell("echo s >> s.txt", "cs")], gate=gate))
    with ThreadPoolExecutor(1) as pool:
        turn = pool.submit(server.post, "/session/start", {"prompt": "go", "session_id": "st"})
        gate.wait_reached()
        server.process.send_signal(signal.SIGTERM)
        gate.open()  # the step in flight ends; the run stops at it
        answer = turn.result(timeout=60)
    assert answer.status_code == 503, answer.text
    assert (answer.json()["error"], answer.json()["reason"]) == ("run_interrupted", "shutdown")
    assert server.process.wait(timeout=120) == 0
    assert not (dirs["work"] / "s.txt").exists(), "stopped at the saved step, before the tool call"
    server = start_live_server(env, tmp_path, tmp_path / "again.log")
    try:
        fake_openai.add(Reply("ran it after the restart"))
        resumed = server.post("/session/st/resume", {})
        assert resumed.status_code == 200 and resumed.json()["response"] == "ran it after the restart", resumed.text
        assert lines(dirs["work"] / "s.txt") == 1
        assert_goose_session(dirs["sessions"] / "st.jsonl")
    finally:
        server.stop()
