"""Background runs through Flask's client: async and Prefer, busy sessions, cancel, events, restarts of a worker."""

from __future__ import annotations

import time

import pytest

from goose_api import create_app
from goose_api.conversation import INTERRUPTED_TEXT
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session, goose_file
from tests.support.mcp_fixtures import wait_until
from tests.support.sse_reader import parse_text


def session_state(client, session_id) -> dict:
    status, body, _ = client.get(f"/session/{session_id}")
    assert status == 200, body
    return body


def wait_for_state(client, session_id, *states, timeout=15.0) -> dict:
    return wait_until(lambda: (b := session_state(client, session_id))["state"] in states and b,
                      timeout, f"session {session_id} to be {states}")


def events_of(client, session_id, **query) -> list:
    path = f"/session/{session_id}/events" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    status, _, response = client.get(path)
    assert status == 200 and response.mimetype == "text/event-stream"
    return parse_text(response.get_data(as_text=True)).events


@pytest.mark.slow
def test_async_start_answers_202_and_the_run_is_polled_to_its_end(client, fake_openai, dirs):
    gate = Gate()
    fake_openai.add(Reply("done in the background", gate=gate))
    status, body, response = client.post("/session/start", {"prompt": "work", "async": True})
    assert status == 202, body
    assert body["status"] == "accepted" and body["run_id"].startswith("run_")
    assert response.headers["Location"] == f"/session/{body['session_id']}"
    running = session_state(client, body["session_id"])
    assert running["state"] == "running" and running["run_id"] == body["run_id"]
    gate.open()
    finished = wait_for_state(client, body["session_id"], "idle")
    assert finished["run_id"] == body["run_id"] and finished["last_error"] is None
    assert [m["role"] for m in finished["messages"]] == ["user", "assistant"]
    assert finished["messages"][1]["content"][0]["text"] == "done in the background"
    assert finished["usage"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    done = events_of(client, body["session_id"])[-1]
    assert done.type == "done" and done.data["response"] == "done in the background"
    assert done.data["message"] == "Session started with prompt: work"
    assert_goose_session(goose_file(dirs, body['session_id']))


@pytest.mark.slow
def test_prefer_respond_async_and_wait(client, fake_openai):
    gate = Gate()
    fake_openai.add(Reply("quick"), Reply("slow", gate=gate))
    status, body, response = client.post("/session/start", {"prompt": "a"}, headers={"Prefer": "respond-async"})
    assert status == 202 and response.headers["Preference-Applied"] == "respond-async"
    session_id = body["session_id"]
    wait_for_state(client, session_id, "idle")
    started = time.monotonic()
    status, body, response = client.post("/session/reply", {"prompt": "b", "session_id": session_id},
                                         headers={"Prefer": "wait=1"})
    assert status == 202, body
    assert time.monotonic() - started >= 1.0, "it waited the second asked for"
    assert response.headers["Preference-Applied"] == "wait=1" and not gate.is_open
    gate.open()
    assert wait_for_state(client, session_id, "idle")["messages"][-1]["content"][0]["text"] == "slow"


@pytest.mark.slow
def test_a_turn_on_a_busy_session_is_409_with_the_active_run(client, fake_openai):
    gate = Gate()
    fake_openai.add(Reply("first", gate=gate), Reply("second"))
    _, started, _ = client.post("/session/start", {"prompt": "a", "session_id": "busy", "async": True})
    status, body, response = client.post("/session/reply", {"prompt": "b", "session_id": "busy"})
    assert status == 409, body
    assert body["error"] == "session_busy" and body["active_run_id"] == started["run_id"]
    assert int(response.headers["Retry-After"]) >= 1
    gate.open()
    wait_for_state(client, "busy", "idle")
    status, body, _ = client.post("/session/reply", {"prompt": "b", "session_id": "busy"})
    assert (status, body["response"], body["message"]) == (200, "second", "Reply: second")


@pytest.mark.slow
def test_blocking_reply_right_after_a_turn_is_never_busy(client, fake_openai):
    fake_openai.add(*[Reply(f"answer {n}") for n in range(8)])
    _, body, _ = client.post("/session/start", {"prompt": "go", "session_id": "quick"})
    for n in range(1, 8):
        status, body, _ = client.post("/session/reply", {"prompt": f"again {n}", "session_id": "quick"})
        assert (status, body["response"]) == (200, f"answer {n}"), body


@pytest.mark.slow
def test_cancel_during_a_provider_call(client, fake_openai, dirs):
    gate = Gate()
    fake_openai.add(Reply("too late", gate=gate))
    _, body, _ = client.post("/session/start", {"prompt": "think hard", "session_id": "slow", "async": True})
    gate.wait_reached()
    status, answer, _ = client.post("/session/slow/cancel")
    assert status == 200, answer  # 200, not 202: the run stopped without the provider's answer
    gate.open()
    assert answer["cancelled"] == "the provider call to openai/gpt-4o"
    assert answer["state"] == "idle" and answer["run_id"] == body["run_id"]
    assert answer["message"] == "Cancelled the provider call to openai/gpt-4o"
    state = session_state(client, "slow")
    assert state["state"] == "idle" and [m["role"] for m in state["messages"]] == ["user"]
    done = events_of(client, "slow")[-1]
    assert done.type == "done" and done.data["status"] == "cancelled"
    status, answer, _ = client.post("/session/slow/cancel")
    assert status == 409 and answer["error"] == "no_active_run"
    fake_openai.add(Reply("back"))
    status, answer, _ = client.post("/session/reply", {"prompt": "never mind", "session_id": "slow"})
    assert (status, answer["response"]) == (200, "back")
    assert_goose_session(goose_file(dirs, "slow"))


@pytest.mark.slow
def test_cancel_during_a_tool_call(client, fake_openai, dirs):
    command = "touch started && sleep 30"
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": command}, id="call_sleep"),
                                          ToolCall("developer__shell", {"command": "echo never"}, id="call_next")]))
    client.post("/session/start", {"prompt": "nap", "session_id": "napping", "async": True})
    wait_until(lambda: (dirs["work"] / "started").exists(), 20, "the tool call to start")
    status, answer, _ = client.post("/session/napping/cancel")
    assert status == 200, answer
    assert answer["cancelled"] == "the tool call developer__shell"
    state = session_state(client, "napping")
    assert state["state"] == "idle"
    responses = state["messages"][2]["content"]
    assert [(r["id"], r["toolResult"]) for r in responses] == [
        ("call_sleep", {"status": "error", "error": "cancelled"}),
        ("call_next", {"status": "error", "error": "cancelled"})]
    assert_goose_session(goose_file(dirs, "napping"))


@pytest.mark.slow
def test_events_replay_resume_and_heartbeat(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, sse_heartbeat=0.2))
    client = ApiClient(app.test_client())
    gate = Gate()
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo hi"}, id="c1")]),
                    Reply("Hello streamed world", chunk_size=4, gate=gate))
    status, _, response = client.post("/session/start", {"prompt": "go", "session_id": "sse", "stream": True},
                                      buffered=False)
    assert status == 200 and response.mimetype == "text/event-stream"
    text = ""
    for chunk in response.response:  # the provider's answer is held until a heartbeat went out
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
        if "keep-alive" in text:
            gate.open()
    read = parse_text(text)
    kinds = [e.type for e in read.events]
    assert kinds == ["tool_request", "tool_response", "message", "message", "message", "message", "message",
                     "done"], kinds
    assert "keep-alive" in read.comments, "a quiet stream (the held provider call) sends heartbeats"
    ids = [e.id for e in read.events]
    assert ids == list(range(1, len(ids) + 1))
    assert "".join(e.data["text"] for e in read.events if e.type == "message") == "Hello streamed world"
    assert read.events[1].data["toolResult"]["status"] == "success"
    assert read.events[-1].data["response"] == "Hello streamed world"
    assert [e.id for e in events_of(client, "sse", after=3)] == ids[3:]
    resumed = client.get("/session/sse/events", headers={"Last-Event-ID": "6"})[2]
    assert [e.id for e in parse_text(resumed.get_data(as_text=True)).events] == ids[6:]
    fake_openai.add(Reply("next"))
    client.post("/session/reply", {"prompt": "more", "session_id": "sse"})
    second = events_of(client, "sse")
    assert second[0].id == ids[-1] + 1, "ids go on across runs, so a Last-Event-ID stays meaningful"
    assert [e.type for e in events_of(client, "sse", run_id=read.events[-1].data["run_id"])] == kinds
    past_the_end = client.get("/session/sse/events", headers={"Last-Event-ID": str(second[-1].id + 5)})[2]
    assert parse_text(past_the_end.get_data(as_text=True)).events == [], "an ended run's stream ends at once"
    app.extensions["goose_api"].close()


def test_event_streams_end_when_the_worker_begins_shutting_down(client, app, fake_openai):
    gate = Gate()
    fake_openai.add(Reply("slow", gate=gate))
    status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "long", "async": True})
    assert status == 202, body
    gate.wait_reached()
    _, _, response = client.get("/session/long/events", buffered=False)
    chunks = iter(response.response)
    first = next(chunks)
    assert "retry:" in (first.decode() if isinstance(first, bytes) else first), "the stream is open"
    app.extensions["goose_api"].begin_shutdown()
    rest = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)  # ends: the worker is stopping
    assert "event: done" not in rest
    client.post("/session/long/cancel")
    gate.open()


@pytest.mark.slow
def test_tool_notifications_become_events(client, fake_openai, tmp_path):
    from tests.support.mcp_fixtures import misbehaving
    assert client.post("/extensions/add", misbehaving("noisy"))[0] == 200
    fake_openai.add(Reply("", tool_calls=[ToolCall("noisy__report", {"steps": 2}, id="r1")]), Reply("reported"))
    status, body, _ = client.post("/session/start", {"prompt": "report", "session_id": "noisy"})
    assert status == 200, body
    notes = [e.data for e in events_of(client, "noisy") if e.type == "notification"]
    assert [n["type"] for n in notes].count("progress") == 2 and [n["type"] for n in notes].count("log") == 2
    assert all(n["extension"] == "noisy" for n in notes)


@pytest.mark.slow
def test_a_stopping_worker_leaves_its_runs_interrupted_and_valid(fake_openai, dirs):
    settings = settings_for(fake_openai, dirs)
    stopping = create_app(settings)
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "touch began && sleep 30"},
                                                   id="call_t")]))
    ApiClient(stopping.test_client()).post("/session/start", {"prompt": "x", "session_id": "stop", "async": True})
    wait_until(lambda: (dirs["work"] / "began").exists(), 20, "the tool call to start")
    stopping.extensions["goose_api"].close()  # what gunicorn's worker_exit hook does on SIGTERM
    survivor = create_app(settings)
    client = ApiClient(survivor.test_client())
    shown = session_state(client, "stop")
    assert shown["state"] == "interrupted" and shown["last_error"]["reason"] == "shutdown", shown
    assert shown["messages"][-1]["content"][0]["type"] == "toolRequest", "left open for a resume, not cancelled"
    assert_goose_session(goose_file(dirs, "stop"))
    fake_openai.add(Reply("resumed"))
    assert client.post("/session/reply", {"prompt": "go on", "session_id": "stop"})[1]["response"] == "resumed"
    _, messages = assert_goose_session(goose_file(dirs, "stop"))
    assert messages[2]["content"][0]["toolResult"] == {"status": "error", "error": INTERRUPTED_TEXT}
    survivor.extensions["goose_api"].close()
