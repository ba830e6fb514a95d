"""Runs over real HTTP: gunicorn on loopback, SSE read by requests, SIGKILL mid-run, several workers."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from goose_api.conversation import INTERRUPTED_TEXT
from tests.fakes.core import Reply, ToolCall
from tests.support.app import API_KEY
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session
from tests.support.live import LiveServer, live_env, start_live_server
from tests.support.mcp_fixtures import wait_until
from tests.support.shared_server import gate
from tests.support.sse_reader import SseRead, parse, parse_text

AUTH = {"x-api-key": API_KEY}


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def keyed(method: str, url: str, **kw) -> requests.Response:
    """One request with the key; it is answered while a turn is held (never after the turn)."""
    return requests.request(method, url, headers={**AUTH, **kw.pop("headers", {})}, timeout=30, **kw)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def kill_hard(server: LiveServer) -> None:
    """SIGKILL the gunicorn master and its workers at once: nothing gets to clean up."""
    workers = children_of(server.process.pid)
    assert workers, "gunicorn has workers"
    for pid in [server.process.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    server.process.wait(10)


def pids_by_request(server: LiveServer, *request_ids: str) -> dict[str, int]:
    """Which worker answered which request: the access log's ``[pid]`` and request id (waits for ``request_ids``)."""
    return {rid: int(pid) for pid, rid in
            re.findall(r"\[(\d+)\] INFO goose_api\.access: request id=(\S+)",
                       server.log_with(*(f"request id={rid} " for rid in request_ids)))}


def test_sse_over_http_with_a_reconnect_in_the_middle(live_server, fake_openai, dirs):
    fake_openai.add(Reply("Let me check. ", tool_calls=[gate("mid", "call_1")], chunk_size=2),
                    Reply("All checked, and here is a long streamed answer.", chunk_size=2))
    first = requests.post(live_server.url + "/session/start", headers=AUTH, stream=True, timeout=30,
                          json={"prompt": "check", "session_id": "live_sse", "stream": True})
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/event-stream")
    seen = SseRead()
    for event in parse(first.iter_lines(decode_unicode=True), seen):
        if event.type == "tool_request":
            break
    first.close()  # the client goes away mid-run; the run must not notice
    last = seen.events[-1].id
    second = requests.get(live_server.url + "/session/live_sse/events", headers={**AUTH, "Last-Event-ID": str(last)},
                          stream=True, timeout=30)
    (dirs["work"] / "mid.go").touch()  # the tool call held the run until the client was back
    rest = SseRead()
    for _ in parse(second.iter_lines(decode_unicode=True), rest):
        pass
    whole = parse_text(live_server.get("/session/live_sse/events?after=0").text).events
    got = [e.id for e in seen.events + rest.events]
    assert got == [e.id for e in whole] and len(set(got)) == len(got), "no event lost or repeated"
    assert [e.type for e in whole][-1] == "done" and rest.events[-1].type == "done"
    texts = "".join(e.data["text"] for e in whole if e.type == "message")
    assert texts == "Let me check. All checked, and here is a long streamed answer."
    assert (dirs["work"] / "mid.waiting").exists(), "the tool call ran in the session's working dir"
    assert len([e for e in whole if e.type == "message"]) > 10, "text arrives as deltas from the provider's stream"
    assert fake_openai.requests[0].body["stream"] is True
    assert_goose_session(dirs["sessions"] / "live_sse.jsonl")


def test_a_long_turn_through_async_and_polling(live_server, fake_openai, dirs):
    """However long a turn takes (a tool, then the provider, each held here as long as the test likes), every
    request about it is answered at once: start, polls, a competing reply (a Procfile router's budget is 30 s)."""
    answer = Gate()
    fake_openai.add(Reply("", tool_calls=[gate("nap", "nap")]), Reply("Finished after a long time.", gate=answer))
    started = keyed("POST", live_server.url + "/session/start", json={"prompt": "take your time", "async": True})
    assert started.status_code == 202, started.text
    session_id, run_id = started.json()["session_id"], started.json()["run_id"]
    seen = 0

    def poll(times: int) -> dict:
        nonlocal seen
        for _ in range(times):
            state = keyed("GET", f"{live_server.url}/session/{session_id}?since={seen}").json()
            seen += len(state["messages"])
            assert state["state"] == "running", state
            busy = keyed("POST", live_server.url + "/session/reply", json={"prompt": "hurry", "session_id": session_id})
            assert busy.status_code == 409 and busy.json()["active_run_id"] == run_id
        return state
    wait_until(lambda: (dirs["work"] / "nap.waiting").exists(), 20, "the tool call to start")
    poll(10)  # during the tool call
    (dirs["work"] / "nap.go").touch()
    answer.wait_reached()
    poll(10)  # during the provider call
    answer.open()
    state = wait_until(lambda: (s := keyed("GET", f"{live_server.url}/session/{session_id}?since={seen}").json())
                       ["state"] != "running" and s, 20, "the turn to end")
    seen += len(state["messages"])
    assert state["state"] == "idle" and state["last_error"] is None, state
    _, messages = assert_goose_session(dirs["sessions"] / f"{session_id}.jsonl")
    assert seen == len(messages) == 4
    assert messages[2]["content"][0]["toolResult"]["status"] == "success"
    assert messages[3]["content"][0]["text"] == "Finished after a long time."


def test_sigkill_mid_run_then_restart(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs)
    server = start_live_server(env, tmp_path, tmp_path / "before.log")
    fake_openai.add(Reply("", tool_calls=[shell("touch started && sleep 20", "call_k")]))
    assert server.post("/session/start", {"prompt": "work", "session_id": "crash", "async": True}).status_code == 202
    wait_until(lambda: (dirs["work"] / "started").exists(), 30, "the tool call to start")
    kill_hard(server)
    server = start_live_server(env, tmp_path, tmp_path / "after.log")
    try:
        shown = server.get("/session/crash").json()
        assert shown["state"] == "interrupted", shown
        assert shown["last_error"]["error"] == "run_interrupted"
        assert shown["messages"][-1]["content"][0]["type"] == "toolRequest"
        events = parse_text(server.get("/session/crash/events").text).events
        assert [e.type for e in events][-2:] == ["tool_request", "error"]
        assert events[-1].data["error"] == "run_interrupted"
        fake_openai.add(Reply("Recovered."))
        answer = server.post("/session/reply", {"prompt": "are you there?", "session_id": "crash"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"] == "Recovered."
        _, messages = assert_goose_session(dirs["sessions"] / "crash.jsonl")
        assert messages[2]["content"] == [{"type": "toolResponse", "id": "call_k",
                                           "toolResult": {"status": "error", "error": INTERRUPTED_TEXT}}]
        assert server.get("/session/crash").json()["state"] == "idle"
    finally:
        server.stop()


def test_two_servers_on_one_data_dir_share_runs(fake_openai, dirs, tmp_path):
    """Two gunicorn instances = two processes: the run lives in A, B polls, confirms, streams and cancels it."""
    env = live_env(fake_openai, dirs, GOOSE_API_MODE="approve")
    a = start_live_server(env, tmp_path, tmp_path / "a.log")
    b = start_live_server(env, tmp_path, tmp_path / "b.log")
    try:
        fake_openai.add(Reply("", tool_calls=[shell("echo from A", "c1")]), Reply("Approved on B."))
        assert a.post("/session/start", {"prompt": "x", "session_id": "shared", "async": True}).status_code == 202
        waiting = wait_until(lambda: (s := b.get("/session/shared").json())["state"] == "waiting_approval" and s,
                             15, "B to see the approval")
        assert [p["id"] for p in waiting["pending_approvals"]] == ["c1"]
        done = b.post("/session/shared/confirm", {"id": "c1", "action": "allow_once"})
        assert done.status_code == 200 and done.json()["response"] == "Approved on B.", done.text
        replay = parse_text(b.get("/session/shared/events").text).events
        assert [e.type for e in replay] == ["tool_request", "approval_required", "tool_response", "message", "done"]
        held = Gate()
        fake_openai.add(Reply("never", gate=held))
        assert a.post("/session/reply", {"prompt": "y", "session_id": "shared", "async": True}).status_code == 202
        held.wait_reached()
        cancelled = keyed("POST", b.url + "/session/shared/cancel")
        held.open()
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["cancelled"] == "the provider call to openai/gpt-4o"
        assert a.get("/session/shared").json()["state"] == "idle"
        a.log_with("run started session=shared")
        assert "run started session=shared" not in b.log_with("path=/session/shared/cancel"), \
            "b's log is written up to the cancel it answered, after any run it started"
        assert_goose_session(dirs["sessions"] / "shared.jsonl")
    finally:
        a.stop()
        b.stop()


def _pinned_sessions(server: LiveServer, timeout: float = 30) -> tuple[requests.Session, requests.Session]:
    """Two keep-alive connections held by different workers (gthread keeps a connection in its worker).

    New connections go to whichever worker accepts first; the second worker may still be
    loading the app when the first one already answers, so this tries until the deadline.
    """
    sessions: dict[int, requests.Session] = {}
    deadline = time.monotonic() + timeout
    while len(sessions) < 2:
        if time.monotonic() > deadline:
            pytest.fail(f"every connection went to one worker for {timeout} s")
        http = requests.Session()
        http.headers.update(AUTH)
        rid = uuid.uuid4().hex
        assert http.get(server.url + "/health", headers={"X-Request-ID": rid}, timeout=10).status_code == 200
        pid = wait_until(lambda: pids_by_request(server).get(rid), 5, "the access log line")
        if pid in sessions:
            http.close()
        else:
            sessions[pid] = http
    return tuple(sessions.values())  # type: ignore[return-value]


def test_two_workers_poll_confirm_and_cancel_from_either(fake_openai, dirs, tmp_path):
    env = live_env(fake_openai, dirs, GOOSE_API_WORKERS="2", GOOSE_API_MODE="approve")
    server = start_live_server(env, tmp_path, tmp_path / "workers.log")
    try:
        owner, other = _pinned_sessions(server)
        ids = {}

        def call(http: requests.Session, method: str, path: str, **kw) -> requests.Response:
            rid = uuid.uuid4().hex
            ids[path + method] = rid
            return http.request(method, server.url + path, headers={"X-Request-ID": rid}, timeout=30, **kw)

        fake_openai.add(Reply("", tool_calls=[shell("echo hi", "w1")]), Reply("Confirmed elsewhere."))
        assert call(owner, "POST", "/session/start", json={"prompt": "x", "session_id": "w", "async": True}) \
            .status_code == 202
        wait_until(lambda: call(other, "GET", "/session/w").json()["state"] == "waiting_approval", 15,
                   "the other worker to see the approval")
        done = call(other, "POST", "/session/w/confirm", json={"id": "w1", "action": "allow_once"})
        assert done.status_code == 200 and done.json()["response"] == "Confirmed elsewhere.", done.text
        held = Gate()
        fake_openai.add(Reply("never", gate=held))
        call(owner, "POST", "/session/reply", json={"prompt": "y", "session_id": "w", "async": True})
        held.wait_reached()
        cancelled = call(other, "POST", "/session/w/cancel")
        held.open()
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "idle", cancelled.text
        served = pids_by_request(server, ids["/session/w/confirmPOST"], ids["/session/w/cancelPOST"])
        started = r"\[(\d+)\] INFO goose_api\.runs\.service: run started session=w "
        owners = wait_until(lambda: len(found := re.findall(started, server.log())) >= 2 and found, 10,
                            "the log lines of both runs' start")
        assert len(owners) == 2, "two runs were started"
        assert served[ids["/session/w/confirmPOST"]] != int(owners[0]), "confirmed by the worker not running it"
        assert served[ids["/session/w/cancelPOST"]] != int(owners[1]), "cancelled by the worker not running it"
        assert_goose_session(dirs["sessions"] / "w.jsonl")
        owner.close()
        other.close()
    finally:
        server.stop()
