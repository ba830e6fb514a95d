"""Two servers on two "hosts" (separate data and sessions dirs) sharing only PostgreSQL: whichever one a
request reaches, it sees the same sessions, owners, Idempotency-Key answers and failed-auth counts."""

from __future__ import annotations

import uuid
from pathlib import Path

import openai
import psycopg
import pytest
from psycopg.types.json import Jsonb

from goose_api import create_app
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.mcp_fixtures import wait_until
from tests.support.openai_sdk import wsgi_client

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})


@pytest.fixture
def hosts(fake_openai, database_url, tmp_path):
    apps = []
    for name in ("one", "two"):
        dirs = {part: tmp_path / name / part for part in ("data", "sessions", "work")}
        for path in dirs.values():
            path.mkdir(parents=True)
        apps.append(create_app(settings_for(fake_openai, dirs, database_url=database_url, api_keys=KEYS,
                                            auth_failure_limit=3, extensions={"developer": {"enabled": False}})))
    yield apps
    for app in apps:
        app.extensions["goose_api"].close()


def as_(app, key: str) -> ApiClient:
    return ApiClient(app.test_client(), key)


def test_a_session_started_on_one_host_is_continued_on_the_other(hosts, fake_openai, tmp_path):
    one, two = hosts
    fake_openai.add(Reply("first answer"), Reply("second answer"))
    assert as_(one, "alice-key").post("/session/start", {"prompt": "hi", "session_id": "s1"})[0] == 200
    status, body, _ = as_(two, "alice-key").post("/session/reply", {"prompt": "again", "session_id": "s1"})
    assert (status, body["response"]) == (200, "second answer")
    shown = as_(one, "alice-key").get("/session/s1")[1]
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant", "user", "assistant"]
    assert not list(Path(tmp_path / "one" / "sessions").iterdir()), "nothing kept on a host's disk"
    assert not list(Path(tmp_path / "two" / "sessions").iterdir())


def test_ownership_holds_on_every_host(hosts, fake_openai):
    one, two = hosts
    fake_openai.add(Reply("mine"))
    as_(one, "alice-key").post("/session/start", {"prompt": "x", "session_id": "alices"})
    assert as_(two, "bob-key").get("/session/alices")[0] == 404
    assert as_(two, "bob-key").get("/sessions")[1]["sessions"] == []
    assert as_(two, "alice-key").get("/session/alices")[0] == 200
    assert [s["id"] for s in as_(two, "alice-key").get("/sessions")[1]["sessions"]] == ["alices"]


def test_an_idempotency_key_gets_the_same_answer_from_either_host(hosts, fake_openai):
    one, two = hosts
    fake_openai.add(Reply("only once"))
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"prompt": "hello", "session_id": "idem"}
    first = as_(one, "alice-key").post("/session/start", body, headers=key)
    again = as_(two, "alice-key").post("/session/start", body, headers=key)
    assert first[0] == again[0] == 200 and first[1] == again[1]
    assert again[2].headers["Idempotent-Replayed"] == "true"
    assert len(fake_openai.requests) == 1
    fake_openai.add(Reply("for bob"))  # the same key from another client is that client's own request
    status, answer, _ = as_(one, "bob-key").post("/session/start", {**body, "session_id": "bobs"}, headers=key)
    assert (status, answer["response"]) == (200, "for bob")


def test_failed_key_checks_on_one_host_throttle_the_address_on_the_other(hosts):
    one, two = hosts
    for _ in range(3):
        assert as_(one, "wrong").get("/provider/config", environ_base={"REMOTE_ADDR": "10.0.0.9"})[0] == 401
    status, body, response = as_(two, "alice-key").get("/provider/config", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert (status, body["error"]) == (429, "too_many_requests") and int(response.headers["Retry-After"]) > 0
    assert as_(two, "alice-key").get("/provider/config", environ_base={"REMOTE_ADDR": "10.0.0.8"})[0] == 200


def test_a_database_away_for_a_moment_is_503_then_service_resumes(hosts, postgres_server, database_url):
    one, _ = hosts
    alice = as_(one, "alice-key")
    assert alice.get("/sessions")[0] == 200 and alice.get("/ready")[0] == 200
    postgres_server.cut_off(database_url)
    try:
        status, body, response = alice.get("/sessions")
        assert (status, body["error"]) == (503, "not_ready") and response.headers["Retry-After"]
        status, body, _ = alice.get("/ready")
        assert status == 503 and "database at DATABASE_URL" in body["message"] and "unreachable" in body["message"]
        assert ApiClient(one.test_client(), None).get("/health")[0] == 200, "the process itself is alive"
    finally:
        postgres_server.reconnect(database_url)
    # the pool reconnects by itself, on its own backoff (a second or more after a long outage)
    wait_until(lambda: alice.get("/sessions")[0] == 200, 60, "the service back after the database")
    assert alice.get("/ready")[0] == 200


def test_a_stored_response_is_retrieved_and_continued_on_the_other_host(hosts, fake_openai):
    one, two = hosts
    fake_openai.add(Reply("remembered"), Reply("continued"))
    first = wsgi_client(one, "alice-key").responses.create(model="goose", input="keep")
    other = wsgi_client(two, "alice-key")
    assert other.responses.retrieve(first.id).model_dump() == first.model_dump()
    assert other.responses.create(model="goose", input="more", previous_response_id=first.id).output_text == \
        "continued"
    with pytest.raises(openai.NotFoundError):
        wsgi_client(two, "bob-key").responses.retrieve(first.id)


def test_a_new_session_with_an_old_id_inherits_no_runs_journal_or_queue(hosts, fake_openai, database_url):
    one, _ = hosts
    with psycopg.connect(database_url, autocommit=True) as conn:  # what an old session of that id left
        conn.execute("INSERT INTO run_records (session_id, record) VALUES ('reused', %s)", (Jsonb({
            "version": 1, "session_id": "reused", "run_id": "run_00000000000000aa", "state": "interrupted",
            "prompt": "someone else's", "pending_approvals": [], "decisions": {}, "last_error": {"x": 1},
            "owner": {}, "turn": "run_00000000000000aa"}),))
        conn.execute("INSERT INTO run_journal (session_id, turn, entry) VALUES ('reused', 'run_00000000000000aa', "
                     "%s)", (Jsonb({"turn": "run_00000000000000aa", "call": "c9", "step": "started"}),))
        conn.execute("INSERT INTO run_queue (session_id, position, item) VALUES ('reused', 0, %s)",
                     (Jsonb({"run_id": "run_00000000000000bb", "kind": "reply", "prompt": "queued", "queued": 1}),))
        conn.execute("INSERT INTO run_events (session_id, run_id, id, type, data, time) VALUES "
                     "('reused', 'run_00000000000000aa', 1, 'message', '{}', 1)")
    fake_openai.add(Reply("fresh"))
    alice = as_(one, "alice-key")
    assert alice.post("/session/start", {"prompt": "mine", "session_id": "reused"})[1]["response"] == "fresh"
    shown = alice.get("/session/reused")[1]
    assert (shown["state"], shown["last_error"], shown["queued_runs"]) == ("idle", None, [])
    assert alice.post("/session/reused/resume", {})[1]["error"] == "not_resumable"
    assert alice.get("/session/reused/events?run_id=run_00000000000000aa")[0] == 404
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM run_journal WHERE entry->>'call' = 'c9'").fetchone()[0] == 0
