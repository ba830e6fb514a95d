"""Identifiers match their patterns whole, a run id cannot reach another session's files, JSON nested past the
limit is a 400, and the API keys' config cannot make an admin by accident or share an owner's name."""

from __future__ import annotations

import json

import pytest

from goose_api.errors import ConfigurationError
from goose_api.settings import Settings
from goose_api.storage import bounded_json
from tests.api.test_errors import assert_error
from tests.api.test_ownership import team  # noqa: F401  (fixture)
from tests.fakes.core import Reply
from tests.support.app import API_KEY


@pytest.mark.parametrize("body,field", [
    ({"prompt": "x", "session_id": "abc\n"}, "session_id"),
    ({"prompt": "x", "webhook": "http://127.0.0.1:9/hook\n"}, "webhook"),
])
def test_an_id_with_a_trailing_newline_is_400_not_a_session(client, dirs, body, field):
    status, answer, _ = client.post("/session/start", body)
    assert_error(status, answer, 400, "validation_error")
    assert field in answer["errors"]
    assert list(dirs["sessions"].iterdir()) == []


@pytest.mark.parametrize("path", ["/session/abc%0A", "/session/abc%0A/events", "/session/abc%0A/export"])
def test_a_session_path_with_a_trailing_newline_is_400(client, path):
    assert_error(*client.get(path)[:2], 400, "bad_request")


def test_run_id_cannot_reach_another_sessions_event_log(team, fake_openai):  # noqa: F811
    fake_openai.add(Reply("alice's secret"), Reply("bob's"))
    status, alices, _ = team["alice"].post("/session/start", {"prompt": "x", "session_id": "a1"})
    assert status == 200
    assert team["bob"].post("/session/start", {"prompt": "y", "session_id": "b1"})[0] == 200
    for run_id in (f"../a1/{alices['run_id']}", f"..%2Fa1%2F{alices['run_id']}", f"{alices['run_id']}%0A"):
        status, answer, response = team["bob"].get(f"/session/b1/events?run_id={run_id}")
        assert_error(status, answer, 400, "validation_error")
        assert "secret" not in response.get_data(as_text=True)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("method,path", [("POST", "/session/start"), ("POST", "/extensions/add"),
                                         ("POST", "/sessions/import"), ("POST", "/session/reply")])
@pytest.mark.parametrize("depth", [bounded_json.MAX_DEPTH + 1, 100_000])
def test_json_nested_past_the_limit_is_400(client, method, path, depth):
    body = '{"prompt": "x", "data": ' + nested(depth - 1) + "}"
    status, answer, _ = client.call(method, path, data=body, content_type="application/json")
    assert_error(status, answer, 400)
    assert answer.get("code", answer["error"]) == "json_too_deep"  # the extension routes keep the seed's shape
    assert answer["limit"] == bounded_json.MAX_DEPTH
    assert client.get("/provider/config")[0] == 200


def test_json_nested_to_the_limit_is_read(client):
    body = json.dumps({"prompt": "x", "session_id": "deep"})[:-1] + ', "ignored": ' + nested(bounded_json.MAX_DEPTH - 1) + "}"
    status, answer, _ = client.call("POST", "/session/start", data=body, content_type="application/json")
    assert_error(status, answer, 400, "validation_error")  # read, then refused for the unknown field
    assert "ignored" in answer["errors"]


def test_a_deeply_nested_imported_message_is_400(client):
    deep = nested(bounded_json.MAX_DEPTH + 5)
    jsonl = '{"working_dir": "/"}\n{"role": "user", "created": 1, "content": ' + deep + "}\n"
    status, answer, _ = client.post("/sessions/import", {"format": "goose-jsonl", "data": jsonl})
    assert_error(status, answer, 400, "bad_request")
    assert "deep" in answer["message"]


# --- the keys' configuration -------------------------------------------------------------------------

def load(tmp_path, text: str, env: dict | None = None) -> Settings:
    (tmp_path / "config.yaml").write_text(text)
    return Settings.load(environ={"HOME": str(tmp_path), **(env or {})}, cwd=tmp_path)


@pytest.mark.parametrize("text,env,match", [
    ('api_keys: [{name: alice, key: k1, admin: "false"}]\n', {}, "admin must be true or false"),
    ("api_keys: [{name: alice, key: k1, admin: 0}]\n", {}, "admin must be true or false"),
    ("api_keys: [{name: alice, key: k1}, {name: alice, key: k2}]\n", {}, "'alice' is given to two keys"),
    ("api_keys: [{name: default, key: k1}]\n", {"GOOSE_API_KEY": "admin-key"}, "named 'default'"),
    ("api_keys: [{name: alice, key: k1}, {name: bob, key: k1}]\n", {}, "keys must be unique"),
    ('api_keys: [{name: "al\\nice", key: k1}]\n', {}, "control characters"),
])
def test_api_keys_that_would_grant_or_share_too_much_stop_the_start(tmp_path, text, env, match):
    with pytest.raises(ConfigurationError, match=match):
        load(tmp_path, text, env)


def test_api_keys_from_the_environment_are_checked_too(tmp_path):
    with pytest.raises(ConfigurationError, match="admin must be true or false"):
        load(tmp_path, "", {"GOOSE_API_API_KEYS": '[{"name": "eve", "key": "k", "admin": "false"}]'})
    keys = load(tmp_path, "api_keys: [{name: eve, key: k, admin: false}, {name: ops, key: o, admin: true}]\n",
                {"GOOSE_API_KEY": API_KEY}).api_keys
    assert [(k["name"], k["admin"]) for k in keys] == [("eve", False), ("ops", True)]


def test_the_mcp_endpoint_refuses_deep_json_as_a_json_rpc_parse_error(client):
    body = '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": ' + nested(100_000) + "}"
    status, answer, _ = client.call("POST", "/mcp", data=body, content_type="application/json",
                                    headers={"Accept": "application/json, text/event-stream"})
    assert status == 400 and answer["error"]["code"] == -32700, answer
    assert client.get("/provider/config")[0] == 200
