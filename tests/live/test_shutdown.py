"""Graceful shutdown of a live gunicorn in the middle of a turn (the provider answers slowly)."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.fakes.core import Reply, ToolCall
from tests.support.goose_format import assert_goose_session
from tests.support.live import live_env, start_live_server


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def extension_pids(server) -> list[int]:
    details = server.get("/extensions").json()["extensions"]
    return [ext["pid"] for ext in details if ext["pid"]]


def start_turn_and_wait_for_the_provider(server, fake, pool, prompt: str):
    """A turn whose provider call is in flight when this returns."""
    before = len(fake.requests)
    turn = pool.submit(server.post, "/session/start", {"prompt": prompt, "session_id": "inflight"}, timeout=60)
    wait_until(lambda: len(fake.requests) > before, 20, "the provider call")
    return turn


def test_sigterm_lets_the_running_turn_finish_and_stops_everything(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_GRACEFUL_TIMEOUT="20"), tmp_path,
                               tmp_path / "term.log")
    fake_openai.add(Reply("warm-up"),
                    Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo step"}, id="s1")]),
                    Reply("finished after SIGTERM", delay=2.0))
    assert server.post("/session/start", {"prompt": "start the tools"}).status_code == 200
    pids = extension_pids(server)
    assert pids and all(alive(pid) for pid in pids)
    with ThreadPoolExecutor(1) as pool:
        before = len(fake_openai.requests)
        turn = pool.submit(server.post, "/session/start", {"prompt": "slow one", "session_id": "inflight"},
                           timeout=60)
        wait_until(lambda: len(fake_openai.requests) >= before + 2, 20, "the slow provider call")
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: _refused(server.url), 10, "the server to stop accepting")
        answer = turn.result(timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"] == "finished after SIGTERM"
    assert server.process.wait(timeout=30) == 0
    _, messages = assert_goose_session(dirs["sessions"] / "inflight.jsonl")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the MCP servers to stop")
    assert not list(dirs["sessions"].glob(".*.tmp")), "a half-written session file was left behind"


def test_a_turn_longer_than_the_graceful_timeout_leaves_a_valid_session_and_no_orphans(
        fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_GRACEFUL_TIMEOUT="1"), tmp_path,
                               tmp_path / "kill.log")
    fake_openai.add(Reply("warm-up"), Reply("too late", delay=8.0))
    assert server.post("/session/start", {"prompt": "start the tools"}).status_code == 200
    pids = extension_pids(server)
    assert pids
    with ThreadPoolExecutor(1) as pool:
        turn = start_turn_and_wait_for_the_provider(server, fake_openai, pool, "never answered")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        try:
            assert turn.result(timeout=30).status_code >= 500
        except requests.ConnectionError:
            pass  # the worker was stopped mid-turn: the client sees the connection end
    _, messages = assert_goose_session(dirs["sessions"] / "inflight.jsonl")
    assert messages[0]["content"] == [{"type": "text", "text": "never answered"}]  # the prompt is kept
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the MCP servers to stop")
    assert not list(dirs["sessions"].glob(".*.tmp"))


def _refused(url: str) -> bool:
    try:
        requests.get(url + "/health", timeout=1)
    except requests.ConnectionError:
        return True
    except requests.Timeout:
        return False
    return False


def test_no_worker_process_survives(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_WORKERS="2"), tmp_path, tmp_path / "w.log")
    booted = lambda: [int(line.split("pid: ")[1]) for line in server.log().splitlines()  # noqa: E731
                      if "Booting worker" in line]
    wait_until(lambda: len(booted()) == 2, 20, "both workers to boot")
    assert server.stop() == 0
    wait_until(lambda: not any(alive(pid) for pid in booted()), 10, "the workers to exit")
