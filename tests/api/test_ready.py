"""GET /ready: provider configured, extensions running, dirs writable; 503 names every reason."""

from __future__ import annotations

import shutil
from types import MappingProxyType

import pytest

from goose_api import create_app
from tests.support.app import ApiClient, settings_for


def ready(settings):
    app = create_app(settings)
    try:
        return ApiClient(app.test_client()).get("/ready")[:2]
    finally:
        app.extensions["goose_api"].close()


def test_ready_when_everything_is_in_place(client, dirs):
    status, body, _ = client.get("/ready")
    assert status == 200, body
    assert body["status"] == "ready"
    checks = {check["name"]: check for check in body["checks"]}
    assert checks["provider"]["ok"] and checks["provider"]["provider"] == "openai"
    assert checks["extensions"]["extensions"] == {"developer": "running"}
    storage = "database" if dirs.get("database_url") else "sessions_dir"  # where the sessions are kept
    assert checks["data_dir"]["ok"] and checks[storage]["ok"] and len(checks) == 4


def test_ready_needs_a_key_and_health_does_not(client):
    anonymous = ApiClient(client.flask, key=None)
    assert anonymous.get("/ready")[0] == 401
    assert anonymous.get("/health")[:2] == (200, {"status": "ok"})


@pytest.mark.slow
def test_missing_provider_credentials_are_named(fake_openai, dirs):
    settings = settings_for(fake_openai, dirs)
    env = {k: v for k, v in settings.env.items() if k != "OPENAI_API_KEY"}
    status, body = ready(settings.replace(env=MappingProxyType(env)))
    assert (status, body["error"]) == (503, "not_ready")
    assert "OPENAI_API_KEY" in body["message"] and "provider openai is not configured" in body["message"]
    assert [c["name"] for c in body["checks"] if not c["ok"]] == ["provider"]


def test_a_failed_extension_is_a_reason(fake_openai, dirs):
    broken = {"broken": {"type": "stdio", "cmd": "goose-api-no-such-command", "enabled": True, "timeout": 5}}
    status, body = ready(settings_for(fake_openai, dirs, extensions=broken))
    assert status == 503
    assert "extension broken is not running" in body["message"]
    extensions = next(c for c in body["checks"] if c["name"] == "extensions")
    assert extensions["extensions"] == {"broken": "failed", "developer": "running"}


@pytest.mark.files_only  # the sessions dir is the file backend's
def test_an_unwritable_sessions_dir_is_a_reason_without_its_path(client, dirs):
    shutil.rmtree(dirs["sessions"])
    dirs["sessions"].write_text("not a directory")  # root ignores permissions; a file in the way does not
    status, body, _ = client.get("/ready")
    assert status == 503
    assert "the sessions dir is not writable" in body["message"] and "sessions_dir" in body["message"]
    assert str(dirs["sessions"]) not in str(body)
