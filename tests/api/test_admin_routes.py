"""Server-wide changes are the admin's: a non-admin key may list and read, never add, remove or switch."""

from __future__ import annotations

import sys

import pytest

from goose_api import create_app
from tests.support.app import ApiClient, settings_for

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "ops", "key": "ops-key", "admin": True})
SAY = {"type": "builtin", "name": "mcp_say"}


@pytest.fixture
def team(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS))
    yield {"alice": ApiClient(app.test_client(), "alice-key"), "ops": ApiClient(app.test_client(), "ops-key"),
           "default": ApiClient(app.test_client())}
    app.extensions["goose_api"].close()


def test_a_non_admin_key_cannot_add_or_remove_extensions(team):
    alice = team["alice"]
    for body in (SAY, {"type": "stdio", "name": "shell", "cmd": sys.executable, "args": ["-c", "print(1)"]},
                 {"type": "streamable_http", "name": "developer", "uri": "http://127.0.0.1:9/mcp"}, {"junk": 1}):
        status, answer, _ = alice.post("/extensions/add", body)
        assert (status, answer["error"], answer["code"]) == (403, True, "forbidden"), answer
        assert "admin key" in answer["message"]
    for body in ("developer", {"name": "developer"}, 17):
        status, answer, _ = alice.post("/extensions/remove", body)
        assert (status, answer["error"], answer["code"]) == (403, True, "forbidden"), answer
    assert alice.get("/extensions/list")[1] == {"extensions": ["developer"]}
    assert [e["name"] for e in alice.get("/extensions")[1]["extensions"]] == ["developer"]


def test_a_non_admin_key_cannot_switch_the_provider(team, fake_openai):
    before = team["alice"].get("/provider/config")[1]
    for body in ({"provider": "openai", "model": "gpt-evil"}, {"provider": ""}, None):
        status, answer, _ = team["alice"].post("/provider/config", body)
        assert (status, answer) == (403, {"status": "error", "error": "forbidden", "message": answer["message"]})
        assert "admin key" in answer["message"]
    assert team["alice"].get("/provider/config")[1] == before


def test_admin_keys_make_the_changes(team, fake_openai):
    for admin in (team["ops"], team["default"]):
        assert admin.post("/extensions/add", SAY)[:2] == (200, {"error": False, "message": None})
        assert admin.post("/extensions/remove", "mcp_say")[:2] == (200, {"error": False, "message": None})
    status, answer, _ = team["ops"].post("/provider/config", {"provider": "openai", "model": "gpt-4o-mini"})
    assert (status, answer["model"]) == (200, "gpt-4o-mini")
    assert team["alice"].get("/provider/config")[1]["model"] == "gpt-4o-mini"


def test_the_openapi_document_says_which_routes_need_admin(team):
    spec = team["alice"].get("/openapi.json")[1]
    admin_only = {(path, method) for path, operations in spec["paths"].items()
                  for method, operation in operations.items()
                  if isinstance(operation, dict) and operation.get("x-admin-only")}
    assert admin_only == {("/extensions/add", "post"), ("/extensions/remove", "post"), ("/provider/config", "post")}
    for path, method in admin_only:
        operation = spec["paths"][path][method]
        assert "403" in operation["responses"] and "admin key" in operation["description"]
