"""Every file the server keeps under its data dir is one that DataDir names (storage/data_dir.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from goose_api import create_app
from goose_api.storage.data_dir import EVENTS_SUFFIX, DataDir, changes_of, lock_of
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.live import free_port

pytestmark = pytest.mark.files_only  # the data dir's layout is the file backend's


def named_by(data: DataDir, path: Path) -> bool:
    """Whether ``path`` is a file or folder DataDir names (for any session, run, key or delivery id)."""
    rel = path.relative_to(data.root).parts
    single = {data.api_key, data.webhook_secret, data.owners, data.owners_legacy, data.permissions, data.provider,
              data.extensions, data.auth_failures}
    sidecars = {lock_of(p) for p in single} | {changes_of(p) for p in single} | \
        {p.with_name(p.name + suffix) for p in single for suffix in ("-wal", "-shm", "-journal")}
    folders = {data.session_locks, data.runs, data.idempotency, data.webhooks, data.failed_webhooks, data.tmp,
               data.prometheus, data.memory, data.idempotency_lock(data.idempotency_entry("00")).parent}
    if path in single | sidecars | folders | {data.steering_changes, data.auto_resume_lock}:
        return True
    if rel[0] == "locks" and len(rel) == 2:
        return path == data.session_lock(path.stem)
    if rel[0] == "runs" and len(rel) == 2:
        return path == data.run_dir(rel[1])
    if rel[0] == "runs" and len(rel) == 3:
        session = rel[1]
        return path in {data.run_record(session), data.run_state_lock(session), data.journal(session),
                        data.previous_journal(session), data.queue(session), data.legacy_queue(session),
                        data.run_events(session, path.name.removesuffix(EVENTS_SUFFIX))}
    if rel[0] == "idempotency":
        return path in {data.idempotency_entry(path.stem), data.idempotency_lock(path)}
    if rel[0] == "responses":
        return path in {data.responses, data.response(path.stem)}
    if rel[0] == "webhooks":
        delivery = data.webhook_delivery(path.name.split(".")[0])
        return path in {delivery, lock_of(delivery), data.failed_webhook(delivery)}
    return False


def test_a_busy_server_keeps_only_files_the_data_dir_names(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, mode="approve", api_key=None, api_keys=(
        {"name": "admin", "key": "admin-key", "admin": True},)))
    client, stranger = ApiClient(app.test_client(), "admin-key"), ApiClient(app.test_client(), "wrong-key")
    try:
        fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo hi"}, id="c1")]),
                        Reply("Done."), Reply("Summary."))
        hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
        status, body, _ = client.post("/session/start", {"prompt": "go", "session_id": "s1", "webhook": hook},
                                      headers={"Idempotency-Key": "k1"})
        assert (status, body["status"]) == (200, "waiting_approval"), body
        assert client.post("/session/s1/confirm", {"id": "c1", "action": "always_allow"})[0] == 200
        assert client.post("/session/summarize", {"session_id": "s1"})[0] == 200
        exported = client.get("/session/s1/export?format=goose-sqlite")[2].data
        assert client.post("/sessions/import", {"format": "goose-sqlite", "session_id": "s2",
                                                "data": base64.b64encode(exported).decode()})[0] == 201
        assert client.post("/provider/config", {"provider": "openai", "model": "gpt-4o-mini"})[0] == 200
        assert stranger.get("/sessions")[0] == 401
        assert client.call("DELETE", "/session/s2")[0] == 200
        fake_openai.add(Reply("A response."))
        status, body, _ = client.post("/v1/responses", {"model": "goose", "input": "one more", "conversation": "s1"})
        assert (status, body["status"]) == (200, "completed"), body
    finally:
        app.extensions["goose_api"].close()
    data = app.extensions["goose_api"].data
    kept = sorted(data.root.rglob("*"))
    assert {data.permissions, data.provider, data.auth_failures, data.run_record("s1"),
            data.response(body["id"])} <= set(kept)
    assert data.webhook_deliveries() or list(data.failed_webhooks.iterdir()), "the webhook is still owed"
    assert [p for p in kept if not named_by(data, p)] == []
    assert not named_by(data, data.root / "stray.json") and not named_by(data, data.run_dir("s1") / "other.json")
    assert list(data.tmp.iterdir()) == [], "scratch files of the export and the import are gone"
