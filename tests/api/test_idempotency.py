"""Idempotency-Key on POST: a repeat gets the stored answer (a turn: the same run), never a second effect."""

from __future__ import annotations

import threading
import uuid

import pytest

from goose_api import create_app
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.gates import Gate
from tests.support.mcp_fixtures import wait_until


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


def keyed(key: str) -> dict:
    return {"Idempotency-Key": key}


def test_the_same_key_and_body_replays_the_answer(client, fake_openai):
    fake_openai.add(Reply("only once"))
    key = str(uuid.uuid4())
    body = {"prompt": "hello", "session_id": "idem"}
    first = client.post("/session/start", body, headers=keyed(key))
    again = client.post("/session/start", {"session_id": "idem", "prompt": "hello"}, headers=keyed(key))
    assert first[0] == again[0] == 200 and first[1] == again[1], (first[1], again[1])
    assert again[2].headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first[2].headers
    assert len(fake_openai.requests) == 1
    status, error, _ = client.post("/session/start", {**body, "prompt": "other"}, headers=keyed(key))
    assert (status, error["status"], error["error"]) == (422, "error", "idempotency_key_reused"), error
    status, error, _ = client.post("/session/reply", body, headers=keyed(key))
    assert status == 422, "another path is another request"


def test_an_async_repeat_answers_the_same_run_with_its_location(client, fake_openai):
    fake_openai.add(Reply("background"))
    key = str(uuid.uuid4())
    first = client.post("/session/start", {"prompt": "x", "async": True}, headers=keyed(key))
    again = client.post("/session/start", {"prompt": "x", "async": True}, headers=keyed(key))
    assert first[0] == again[0] == 202
    assert again[1]["run_id"] == first[1]["run_id"] and again[2].headers["Location"] == first[2].headers["Location"]
    wait_until(lambda: client.get(first[2].headers["Location"])[1]["state"] == "idle", 10, "the run to end")
    assert len(fake_openai.requests) == 1


def test_a_repeat_while_the_turn_runs_attaches_to_it(app, client, fake_openai):
    gate = Gate()
    fake_openai.add(Reply("slow answer", gate=gate))
    key = str(uuid.uuid4())
    answers = []
    body = {"prompt": "wait for me", "session_id": "attach"}
    first = threading.Thread(target=lambda: answers.append(
        ApiClient(app.test_client()).post("/session/start", body, headers=keyed(key))))
    first.start()
    gate.wait_reached()
    # The answer is held, so nothing can be stored yet: a repeat attaches to the run (a new run would be a
    # 409, a replay needs a stored answer). Asked to wait one second, it says the run is still going.
    status, attached, response = client.post("/session/start", body, headers={**keyed(key), "Prefer": "wait=1"})
    assert (status, response.headers["Idempotent-Replayed"]) == (202, "true"), attached
    gate.open()
    first.join(30)
    assert attached["run_id"] == answers[0][1]["run_id"] and answers[0][1]["response"] == "slow answer"
    status, again, response = client.post("/session/start", body, headers=keyed(key))
    assert status == 200 and again["response"] == "slow answer", again
    assert again["run_id"] == answers[0][1]["run_id"] and response.headers["Idempotent-Replayed"] == "true"
    assert len(fake_openai.requests) == 1


def test_keys_are_per_client_and_survive_a_restart(fake_openai, dirs):
    keys = [{"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"}]
    settings = settings_for(fake_openai, dirs, api_keys=tuple(keys))
    app = create_app(settings)
    alice, bob = ApiClient(app.test_client(), "alice-key"), ApiClient(app.test_client(), "bob-key")
    fake_openai.add(Reply("for alice"), Reply("for bob"))
    key = "shared-key"
    assert alice.post("/session/start", {"prompt": "hi", "session_id": "a1"}, headers=keyed(key))[0] == 200
    status, body, _ = bob.post("/session/start", {"prompt": "hi", "session_id": "b1"}, headers=keyed(key))
    assert (status, body["response"]) == (200, "for bob"), "bob's key is his own"
    app.extensions["goose_api"].close()
    restarted = create_app(settings)
    try:
        status, body, response = ApiClient(restarted.test_client(), "alice-key").post(
            "/session/start", {"prompt": "hi", "session_id": "a1"}, headers=keyed(key))
        assert (status, body["response"], response.headers["Idempotent-Replayed"]) == (200, "for alice", "true")
    finally:
        restarted.extensions["goose_api"].close()
    assert len(fake_openai.requests) == 2


@pytest.mark.slow
def test_busy_answers_are_not_kept_and_keys_expire(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, idempotency_ttl=0.5))
    client = ApiClient(app.test_client())
    try:
        gate = Gate()
        fake_openai.add(Reply("long", gate=gate), Reply("second"), Reply("third"))
        client.post("/session/start", {"prompt": "x", "session_id": "exp", "async": True})
        gate.wait_reached()
        body = {"prompt": "y", "session_id": "exp"}
        assert client.post("/session/reply", body, headers=keyed("k1"))[0] == 409
        gate.open()
        wait_until(lambda: client.get("/session/exp")[1]["state"] == "idle", 10, "the first run")
        assert client.post("/session/reply", body, headers=keyed("k1"))[1]["response"] == "second", \
            "a 409 is not replayed: the retry runs"
        store = app.extensions["goose_api"].idempotency
        wait_until(lambda: store.sweep() or not store.count(), 10, "the key to expire")
        assert client.post("/session/reply", body, headers=keyed("k1"))[1]["response"] == "third"
    finally:
        app.extensions["goose_api"].close()


def test_a_malformed_key_is_400(client):
    status, body, _ = client.post("/session/start", {"prompt": "x"}, headers=keyed("has space"))
    assert (status, body["error"]) == (400, "bad_request") and "Idempotency-Key" in body["message"]
