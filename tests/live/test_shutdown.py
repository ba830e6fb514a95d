"""Graceful shutdown of a live gunicorn in the middle of a turn (the provider's answer held at a gate)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.fakes.core import Reply, ToolCall
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session
from tests.support.live import live_env, start_live_server
from tests.support.mcp_fixtures import wait_until


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def extension_pids(server) -> list[int]:
    details = server.get("/extensions").json()["extensions"]
    return [ext["pid"] for ext in details if ext["pid"]]


def start_turn_and_wait_for_the_provider(server, gate: Gate, pool, prompt: str):
    """A turn whose provider call is in flight (held at ``gate``) when this returns."""
    turn = pool.submit(server.post, "/session/start", {"prompt": prompt, "session_id": "inflight"}, timeout=60)
    gate.wait_reached()
    return turn


def test_sigterm_lets_the_running_turn_finish_and_stops_everything(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_GRACEFUL_TIMEOUT="20"), tmp_path,
                               tmp_path / "term.log")
    gate = Gate()
    fake_openai.add(Reply("warm-up"),
                    Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo step"}, id="s1")]),
                    Reply("finished after SIGTERM", gate=gate))
    assert server.post("/session/start", {"prompt": "start the tools"}).status_code == 200
    pids = extension_pids(server)
    assert pids and all(alive(pid) for pid in pids)
    try:
        with ThreadPoolExecutor(1) as pool:
            turn = start_turn_and_wait_for_the_provider(server, gate, pool, "slow one")
            server.process.send_signal(signal.SIGTERM)
            server.log_with("run stopping session=inflight", timeout=30)  # the worker got it
            gate.open()  # the provider answers only now, after SIGTERM
            answer = turn.result(timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"] == "finished after SIGTERM"
        assert server.process.wait(timeout=30) == 0
    finally:
        gate.open()
        server.stop(signal.SIGKILL)
    _, messages = assert_goose_session(dirs["sessions"] / "inflight.jsonl")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the MCP servers to stop")
    assert not list(dirs["sessions"].glob(".*.tmp")), "a half-written session file was left behind"


def test_a_turn_longer_than_the_graceful_timeout_leaves_a_valid_session_and_no_orphans(
        fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_GRACEFUL_TIMEOUT="1"), tmp_path,
                               tmp_path / "kill.log")
    gate = Gate()
    fake_openai.add(Reply("warm-up"), Reply("too late", gate=gate))
    assert server.post("/session/start", {"prompt": "start the tools"}).status_code == 200
    pids = extension_pids(server)
    assert pids
    with ThreadPoolExecutor(1) as pool:
        turn = start_turn_and_wait_for_the_provider(server, gate, pool, "never answered")
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0  # the held call outlived the 1 s graceful timeout
        gate.open()
        try:
            assert turn.result(timeout=30).status_code >= 500
        except requests.ConnectionError:
            pass  # the worker was stopped mid-turn: the client sees the connection end
    _, messages = assert_goose_session(dirs["sessions"] / "inflight.jsonl")
    assert messages[0]["content"] == [{"type": "text", "text": "never answered"}]  # the prompt is kept
    wait_until(lambda: not any(alive(pid) for pid in pids), 10, "the MCP servers to stop")
    assert not list(dirs["sessions"].glob(".*.tmp"))


def test_no_worker_process_survives(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_WORKERS="2"), tmp_path, tmp_path / "w.log")
    booted = lambda: [int(line.split("pid: ")[1]) for line in server.log().splitlines()  # noqa: E731
                      if "Booting worker" in line]
    wait_until(lambda: len(booted()) == 2, 20, "both workers to boot")
    assert server.stop() == 0
    wait_until(lambda: not any(alive(pid) for pid in booted()), 10, "the workers to exit")
