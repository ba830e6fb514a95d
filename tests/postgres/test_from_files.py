"""goose-api migrate --from-files: a file installation moved into the database, idempotently."""

from __future__ import annotations

import json

import pytest

from goose_api import create_app
from goose_api.postgres import from_files
from goose_api.postgres.db import Database
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})


@pytest.fixture
def db(database_url):
    database = Database(database_url).open()
    yield database
    database.close()


def file_installation(fake_openai, dirs) -> dict[str, list]:
    """Sessions of two keys made by a server on files, plus the small state beside them."""
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS, extensions={"developer": {"enabled": False}}))
    fake_openai.add(Reply("for alice"), Reply("for bob"))
    shown = {}
    for name in ("alice", "bob"):
        client = ApiClient(app.test_client(), f"{name}-key")
        assert client.post("/session/start", {"prompt": f"hi from {name}", "session_id": f"{name}s"})[0] == 200
        shown[name] = client.get(f"/session/{name}s")[1]["messages"]
    app.extensions["goose_api"].close()
    (dirs["data"] / "permissions.json").write_text(json.dumps({"keys": {"alice": ["developer__shell"]},
                                                               "always_allow": ["memory__remember"]}))
    (dirs["data"] / "provider.json").write_text(json.dumps({"provider": "openai", "model": "gpt-4o-mini"}))
    (dirs["data"] / "webhook_secret").write_text("file-secret\n")
    (dirs["data"] / "webhooks" / "whd_0000000000000001.json").write_text(json.dumps(
        {"id": "whd_0000000000000001", "url": "http://127.0.0.1:9/hook", "body": "{}", "attempts": 2,
         "next_at": 4102444800.0, "created": 1.0, "last_error": "HTTP 500"}))
    return shown


def test_a_file_installation_moves_in_once(fake_openai, dirs, db, database_url):
    shown = file_installation(fake_openai, dirs)
    moved = from_files.move(db, dirs["data"], dirs["sessions"])
    assert sorted(moved.sessions) == ["alices", "bobs"] and moved.skipped == [] and moved.unreadable == []
    again = from_files.move(db, dirs["data"], dirs["sessions"])
    assert again.sessions == [] and sorted(again.skipped) == ["alices", "bobs"] and again.other == []
    assert db.fetchone("SELECT count(*) FROM messages")[0] == 4, "nothing copied twice"

    app = create_app(settings_for(fake_openai, {**dirs, "data": dirs["home"], "sessions": dirs["work"]},
                                  database_url=database_url, api_keys=KEYS,
                                  extensions={"developer": {"enabled": False}}))
    try:
        alice, bob = (ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob"))
        assert [s["id"] for s in alice.get("/sessions")[1]["sessions"]] == ["alices"]
        assert alice.get("/session/alices")[1]["messages"] == shown["alice"]
        assert bob.get("/session/alices")[0] == 404 and bob.get("/session/bobs")[1]["messages"] == shown["bob"]
        services = app.extensions["goose_api"]
        assert services.providers.current() == ("openai", "gpt-4o-mini")
        assert services.webhooks.secret == "file-secret"
        assert [d["attempts"] for d in services.webhooks.outbox.waiting()] == [2]
        permissions = services.stores.permissions
        assert permissions.always_allowed("developer__shell", "alice")
        assert not permissions.always_allowed("developer__shell", "bob")
        assert permissions.always_allowed("memory__remember", "default")
    finally:
        app.extensions["goose_api"].close()
