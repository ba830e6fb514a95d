"""Long-lived requests (event streams, blocking turns and waits) under per-key and per-worker limits.

Runs are held by a tool call waiting for approval (``mode: approve``), so a
stream on them stays open for as long as a test needs, with no sleeps.
"""

from __future__ import annotations

import pytest

from goose_api import create_app
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import stored_session_ids
from tests.support.mcp_fixtures import wait_until

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})


@pytest.fixture
def app(fake_openai, dirs):
    application = create_app(settings_for(fake_openai, dirs, mode="approve", threads=10, long_request_limit=3,
                                          long_request_key_limit=2, api_keys=KEYS))
    yield application
    application.extensions["goose_api"].close()


@pytest.fixture
def alice(app) -> ApiClient:
    return ApiClient(app.test_client(), "alice-key")


@pytest.fixture
def bob(app) -> ApiClient:
    return ApiClient(app.test_client(), "bob-key")


def budget(app):
    return app.extensions["goose_api.long_requests"]


def held_run(client: ApiClient, fake, session_id: str) -> None:
    """A run started in the background that waits for approval of a tool call until the test ends."""
    fake.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo held"}, id=f"{session_id}-c")]))
    status, body, _ = client.post("/session/start", {"prompt": "hold", "session_id": session_id, "async": True})
    assert status == 202, body
    wait_until(lambda: client.get(f"/session/{session_id}")[1]["state"] == "waiting_approval", 15,
               f"{session_id} to wait for approval")


def open_stream(client: ApiClient, session_id: str):
    status, body, response = client.get(f"/session/{session_id}/events", buffered=False)
    assert status == 200 and response.mimetype == "text/event-stream", body
    return response


def assert_limited(answer, scope: str, limit: int) -> None:
    status, body, response = answer
    assert status == 429, body
    assert response.headers["Retry-After"] == "5"
    assert (body["error"], body["scope"], body["limit"]) == ("too_many_requests", scope, limit)
    assert "async" in body["message"], "the answer says how to do without a long request"


def test_streams_are_limited_per_key_and_per_worker_and_short_requests_still_answer(app, alice, bob, fake_openai):
    held_run(alice, fake_openai, "a")
    held_run(bob, fake_openai, "b")
    streams = [open_stream(alice, "a"), open_stream(alice, "a")]
    assert_limited(alice.get("/session/a/events"), "key", 2)
    streams.append(open_stream(bob, "b"))  # bob has his own share
    assert budget(app).open() == 3
    assert_limited(bob.get("/session/b/events"), "server", 3)
    assert alice.get("/health")[0] == 200
    assert alice.get("/session/a")[1]["state"] == "waiting_approval"
    assert bob.get("/sessions")[0] == 200
    fake_openai.add(Reply("a new turn"))
    status, body, _ = bob.post("/session/start", {"prompt": "new", "session_id": "new", "async": True})
    assert status == 202, "a turn in the background needs no long-lived slot"
    wait_until(lambda: bob.get("/session/new")[1]["state"] == "idle", 15, "the new turn to run")
    streams[0].close()  # the client went away: its slot is free again
    assert budget(app).open("alice") == 1
    streams.append(open_stream(alice, "a"))
    for stream in streams:
        stream.close()
    assert budget(app).open() == 0


def test_a_blocking_turn_over_the_limit_is_429_and_starts_nothing(app, alice, fake_openai, dirs):
    held_run(alice, fake_openai, "a")
    streams = [open_stream(alice, "a"), open_stream(alice, "a")]
    requests_before = len(fake_openai.requests)
    assert_limited(alice.post("/session/start", {"prompt": "wait for me", "session_id": "blocked"}), "key", 2)
    assert_limited(alice.post("/session/start", {"prompt": "wait", "session_id": "blocked"},
                              headers={"Prefer": "wait=5"}), "key", 2)
    assert_limited(alice.post("/session/start", {"prompt": "stream", "session_id": "blocked", "stream": True}),
                   "key", 2)
    assert_limited(alice.post("/session/reply", {"prompt": "more", "session_id": "a"}), "key", 2)
    assert_limited(alice.post("/session/summarize", {"session_id": "a"}), "key", 2)
    assert alice.get("/session/blocked")[0] == 404 and "blocked" not in stored_session_ids(dirs)
    assert len(fake_openai.requests) == requests_before, "the provider was never called"
    fake_openai.add(Reply("in the background"), Reply("later"))
    status, body, _ = alice.post("/session/start", {"prompt": "async", "session_id": "bg", "async": True})
    assert status == 202, body
    status, body, response = alice.post("/session/start", {"prompt": "later", "session_id": "bg2"},
                                        headers={"Prefer": "respond-async"})
    assert status == 202 and response.headers["Preference-Applied"] == "respond-async"
    for session_id in ("bg", "bg2"):
        wait_until(lambda: alice.get(f"/session/{session_id}")[1]["state"] == "idle", 15, f"{session_id} to end")
    for stream in streams:
        stream.close()


def test_a_429_is_not_stored_against_its_idempotency_key(app, alice, fake_openai):
    held_run(alice, fake_openai, "a")
    streams = [open_stream(alice, "a"), open_stream(alice, "a")]
    request = ({"prompt": "once", "session_id": "keyed"}, {"Idempotency-Key": "retry-me"})
    assert alice.post("/session/start", request[0], headers=request[1])[0] == 429
    streams.pop().close()
    fake_openai.add(Reply("answered"))
    status, body, response = alice.post("/session/start", request[0], headers=request[1])
    assert (status, body["response"]) == (200, "answered"), "the retry runs: the 429 was forgotten"
    assert "Idempotent-Replayed" not in response.headers
    assert budget(app).open("alice") == 1
    streams.pop().close()


def test_cancel_with_no_slot_free_answers_202_at_once(app, alice, fake_openai):
    held_run(alice, fake_openai, "a")
    streams = [open_stream(alice, "a"), open_stream(alice, "a")]
    status, body, _ = alice.post("/session/a/cancel")
    assert status == 202 and body["status"] == "accepted", body
    wait_until(lambda: alice.get("/session/a")[1]["state"] != "waiting_approval", 15, "the run to stop")
    for stream in streams:
        stream.close()
    held_run(alice, fake_openai, "c")
    status, body, _ = alice.post("/session/c/cancel")
    assert status == 200 and body["cancelled"], "with a slot free, cancel waits and says what it stopped"
    assert budget(app).open() == 0


def test_slots_come_back_when_the_answer_is_an_error_or_the_stream_ends(app, alice, fake_openai):
    held_run(alice, fake_openai, "a")
    status, body, _ = alice.post("/session/reply", {"prompt": "again", "session_id": "a"})
    assert status == 409 and body["error"] == "session_busy"
    assert alice.post("/session/start", {"prompt": "x", "session_id": "bad id"})[0] == 400
    assert budget(app).open() == 0, "the busy answer and the bad request gave their slots back"
    stream = open_stream(alice, "a")
    fake_openai.add(Reply("approved and done"))
    assert alice.post("/session/a/confirm", {"id": "a-c", "action": "allow_once", "async": True})[0] == 202
    text = stream.get_data(as_text=True)  # the run ends: so does its stream
    assert "event: done" in text
    stream.close()
    fake_openai.add(Reply("blocking answer"))
    status, body, _ = alice.post("/session/reply", {"prompt": "blocking", "session_id": "a"})
    assert (status, body["response"]) == (200, "blocking answer")
    assert budget(app).open() == 0
