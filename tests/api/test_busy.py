"""Busy sessions: ``if_busy`` reject, enqueue and interrupt, each with concurrent clients."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from goose_api import create_app
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session, goose_file
from tests.support.mcp_fixtures import wait_until


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


def start_long(client, fake_openai, session_id: str) -> tuple[str, Gate]:
    """A first turn held in its provider call until the test opens the gate."""
    gate = Gate()
    fake_openai.add(Reply("first", gate=gate))
    status, body, _ = client.post("/session/start", {"prompt": "first", "session_id": session_id, "async": True})
    assert status == 202, body
    gate.wait_reached()
    return body["run_id"], gate


def replies(app, session_id: str, prompts: list[str], **fields) -> list[tuple[int, dict]]:
    """Each prompt sent at once from its own thread (and its own test client)."""
    def send(prompt):
        status, body, _ = ApiClient(app.test_client()).post(
            "/session/reply", {"prompt": prompt, "session_id": session_id, **fields})
        return status, body
    with ThreadPoolExecutor(len(prompts)) as pool:
        return list(pool.map(send, prompts))


def prompts_in(client, session_id: str) -> list[str]:
    messages = client.get(f"/session/{session_id}")[1]["messages"]
    return [m["content"][0]["text"] for m in messages if m["role"] == "user"]


def test_reject_is_the_default(app, client, fake_openai):
    active, gate = start_long(client, fake_openai, "busy")
    answers = replies(app, "busy", ["a", "b", "c", "d"])
    assert all(status == 409 and body["error"] == "session_busy" and body["active_run_id"] == active
               for status, body in answers), answers
    answers = replies(app, "busy", ["e"], if_busy="reject")
    assert answers[0][0] == 409
    gate.open()
    wait_until(lambda: client.get("/session/busy")[1]["state"] == "idle", 10, "the first run to end")
    assert prompts_in(client, "busy") == ["first"]


@pytest.mark.slow
def test_enqueue_runs_every_turn_in_order_after_the_current_one(app, client, fake_openai, dirs):
    _, gate = start_long(client, fake_openai, "queue")
    fake_openai.add(*[Reply(f"answer {n}") for n in range(4)])
    answers = replies(app, "queue", ["q0", "q1", "q2", "q3"], if_busy="enqueue")
    assert all(status == 202 and body["status"] == "queued" for status, body in answers), answers
    run_ids = [body["run_id"] for _, body in answers]
    shown = client.get("/session/queue")[1]
    assert shown["state"] == "running" and sorted(q["run_id"] for q in shown["queued_runs"]) == sorted(run_ids)
    order = [q["run_id"] for q in shown["queued_runs"]]
    gate.open()
    wait_until(lambda: (s := client.get("/session/queue")[1])["state"] == "idle" and not s["queued_runs"]
               and len(s["messages"]) == 10, 30, "the queue to drain")
    by_run = dict(zip(run_ids, ["q0", "q1", "q2", "q3"]))
    assert prompts_in(client, "queue") == ["first"] + [by_run[run_id] for run_id in order], "first in, first out"
    for run_id in run_ids:
        events = client.get(f"/session/queue/events?run_id={run_id}")[2].get_data(as_text=True)
        assert "event: done" in events
    assert_goose_session(goose_file(dirs, "queue"))


def test_enqueue_on_an_idle_session_just_runs(client, fake_openai):
    fake_openai.add(Reply("one"), Reply("two"))
    client.post("/session/start", {"prompt": "x", "session_id": "idle"})
    status, body, _ = client.post("/session/reply", {"prompt": "y", "session_id": "idle", "if_busy": "enqueue"})
    assert (status, body["response"]) == (200, "two"), body


def test_interrupt_cancels_the_current_run_and_runs_this_one(app, client, fake_openai, dirs):
    gate = Gate()
    fake_openai.add(Reply("too late", gate=gate))

    def first():
        return client.post("/session/start", {"prompt": "slow", "session_id": "int"})[:2]

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(first)
        gate.wait_reached()
        fake_openai.add(Reply("right away"))
        status, body = replies(app, "int", ["now"], if_busy="interrupt")[0]
        assert (status, body["response"]) == (200, "right away"), body
        cut_status, cut = slow.result(30)
    gate.open()
    assert (cut_status, cut["status"], cut["cancelled"]) == (200, "cancelled", "the provider call to openai/gpt-4o")
    assert prompts_in(client, "int") == ["slow", "now"]
    assert_goose_session(goose_file(dirs, "int"))


@pytest.mark.slow
def test_a_queue_left_by_a_stopped_worker_runs_after_a_restart(fake_openai, dirs):
    settings = settings_for(fake_openai, dirs)
    first = create_app(settings)
    client = ApiClient(first.test_client())
    _, gate = start_long(client, fake_openai, "left")
    status, body, _ = client.post("/session/reply", {"prompt": "later", "session_id": "left", "if_busy": "enqueue"})
    assert status == 202, body
    first.extensions["goose_api"].close()  # the running turn is interrupted; the queued one stays on disk
    gate.open()
    fake_openai.add(Reply("ran after the restart"))
    second = create_app(settings)  # its start-up sweep finds the queue
    try:
        client = ApiClient(second.test_client())
        shown = wait_until(lambda: (s := client.get("/session/left")[1])["run_id"] == body["run_id"]
                           and s["state"] == "idle" and s, 20, "the queued turn to run")
        assert shown["messages"][-1]["content"][0]["text"] == "ran after the restart"
        assert prompts_in(client, "left") == ["first", "later"]
    finally:
        second.extensions["goose_api"].close()
