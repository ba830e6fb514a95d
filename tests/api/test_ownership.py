"""Several clients: named keys, session owners in a side index, admins, and what others see (404)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from goose_api import create_app
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file, stored_session_ids

DATA = Path(__file__).resolve().parents[1] / "data"
KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"},
        {"name": "ops", "key": "ops-key", "admin": True})


@pytest.fixture
def team(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS))
    yield {name: ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob", "ops")} | {
        "default": ApiClient(app.test_client())}
    app.extensions["goose_api"].close()


@pytest.mark.files_only  # owners.jsonl's lines
def test_owner_is_recorded_beside_the_goose_file(team, fake_openai, dirs):
    fake_openai.add(Reply("hi"))
    assert team["alice"].post("/session/start", {"prompt": "x", "session_id": "a1"})[0] == 200
    lines = (dirs["data"] / "owners.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"session": "a1", "owner": "alice"}]
    meta, _ = assert_goose_session(goose_file(dirs, "a1"))  # the goose file stays goose's
    assert "alice" not in (dirs["sessions"] / "a1.jsonl").read_text() and "owner" not in meta


def test_a_key_replies_only_to_its_own_sessions(team, fake_openai, dirs):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    team["bob"].post("/session/start", {"prompt": "y", "session_id": "bobs"})
    status, body, _ = team["bob"].post("/session/reply", {"prompt": "peek", "session_id": "alices"})
    assert (status, body["error"]) == (404, "not_found")
    missing = team["bob"].post("/session/reply", {"prompt": "peek", "session_id": "nosuch"})[1]
    assert body["message"].replace("alices", "X") == missing["message"].replace("nosuch", "X")
    status, body, _ = team["alice"].post("/session/reply", {"prompt": "mine", "session_id": "alices"})
    assert (status, body["response"]) == (200, "c")
    assert len(assert_goose_session(goose_file(dirs, "alices"))[1]) == 4
    assert len(assert_goose_session(goose_file(dirs, "bobs"))[1]) == 2


def test_reply_without_id_takes_the_keys_own_latest_session(team, fake_openai):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    team["bob"].post("/session/start", {"prompt": "y", "session_id": "bobs"})  # the newest overall
    status, body, _ = team["alice"].post("/session/reply", {"prompt": "again"})
    assert (status, body["session_id"]) == (200, "alices")


def test_a_key_with_no_sessions_has_nothing_to_reply_to(team, fake_openai):
    fake_openai.add(Reply("a"))
    team["alice"].post("/session/start", {"prompt": "x"})
    status, body, _ = team["bob"].post("/session/reply", {"prompt": "hello?"})
    assert (status, body["error"]) == (404, "not_found")


def test_admin_keys_see_every_session(team, fake_openai):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    assert team["ops"].post("/session/reply", {"prompt": "admin", "session_id": "alices"})[0] == 200
    assert team["default"].post("/session/reply", {"prompt": "api_key", "session_id": "alices"})[0] == 200


@pytest.mark.files_only  # a goose CLI file dropped into the sessions dir
def test_sessions_without_an_owner_are_for_admins_only(team, fake_openai, dirs):
    shutil.copy(DATA / "goose_cli_session.jsonl", dirs["sessions"] / "from_cli.jsonl")
    assert team["alice"].post("/session/reply", {"prompt": "x", "session_id": "from_cli"})[0] == 404
    fake_openai.add(Reply("ok"))
    assert team["ops"].post("/session/reply", {"prompt": "x", "session_id": "from_cli"})[0] == 200


def test_a_wrong_key_is_401_whoever_owns_what(team):
    assert ApiClient(team["alice"].flask, "alice-key-wrong").post("/session/reply", {"prompt": "x"})[0] == 401


SESSION_ENDPOINTS = [
    ("GET", "/session/{id}", None), ("DELETE", "/session/{id}", None),
    ("POST", "/session/reply", {"prompt": "peek", "session_id": "{id}"}),
    ("POST", "/session/end", {"session_id": "{id}"}), ("POST", "/session/summarize", {"session_id": "{id}"}),
    ("GET", "/session/{id}/events", None), ("POST", "/session/{id}/cancel", None),
    ("POST", "/session/{id}/confirm", {"id": "c1", "action": "deny"}), ("POST", "/session/{id}/resume", {}),
    ("POST", "/session/{id}/fork", {}), ("GET", "/session/{id}/export", None)]


@pytest.mark.parametrize("method,path,body", SESSION_ENDPOINTS)
def test_another_keys_session_is_answered_exactly_like_a_missing_one(team, fake_openai, dirs, method, path, body):
    fake_openai.add(Reply("hers"))
    assert team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})[0] == 200

    def call(session_id):
        filled = json.loads(json.dumps(body).replace("{id}", session_id)) if body is not None else None
        status, answer, _ = team["bob"].call(method, path.replace("{id}", session_id), json=filled)
        return status, json.dumps(answer).replace(session_id, "ID")
    assert call("alices") == call("nosuch12") and call("alices")[0] == 404
    assert len(assert_goose_session(goose_file(dirs, "alices"))[1]) == 2, "nothing changed"


def test_a_listing_and_the_metrics_show_only_the_keys_own_sessions(team, fake_openai):
    fake_openai.add(Reply("a"), Reply("b"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    team["bob"].post("/session/start", {"prompt": "y", "session_id": "bobs"})
    assert [s["id"] for s in team["bob"].get("/sessions")[1]["sessions"]] == ["bobs"]
    assert [s["id"] for s in team["ops"].get("/sessions")[1]["sessions"]] == ["bobs", "alices"]
    summary = team["alice"].get("/metrics", headers={"Accept": "application/json"})[1]
    assert summary["session_messages"] == {"alices": 2}


def test_a_start_refused_for_a_busy_id_leaves_no_session_behind(app, client, dirs):
    """Another holder has the id's lock (a delete of an old session of that id, say): 409, and no empty file."""
    services = app.extensions["goose_api"]
    with services.store.lock("held"):
        status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "held"})
    assert (status, body["error"]) == (409, "session_busy")
    assert "held" not in stored_session_ids(dirs)
    assert services.access.owners.owner("held") is None
    assert client.get("/session/held")[0] == 404 and client.get("/sessions")[1]["total"] == 0


def test_a_start_refused_while_stopping_leaves_no_session_behind(app, client, dirs):
    services = app.extensions["goose_api"]
    services.begin_shutdown()  # what SIGTERM does
    status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "late"})
    assert (status, body["error"]) == (503, "server_stopping")
    assert stored_session_ids(dirs) == set()
    assert services.access.owners.owner("late") is None
