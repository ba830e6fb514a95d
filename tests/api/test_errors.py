"""Every bad input a user can send: a clear JSON error, the right status, the server stays up, no data lost."""

from __future__ import annotations

import json

import pytest

from tests.fakes.core import Reply
from tests.support.goose_format import assert_goose_session, goose_file, stored_session_ids

BODY_ENDPOINTS = ["/session/start", "/session/reply", "/provider/config"]
KEYED_ROUTES = [("POST", "/session/start"), ("POST", "/session/reply"), ("GET", "/provider/config"),
                ("POST", "/provider/config")]


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


def assert_error(status, body, expected_status, code=None):
    assert status == expected_status, body
    assert body is not None, "error answers are JSON"
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in json.dumps(body)
    if code:
        assert body["error"] == code, body


@pytest.fixture
def existing(client, fake_openai, dirs):
    """A session whose file must not change when bad requests arrive."""
    fake_openai.add(Reply("kept"))
    status, body, _ = client.post("/session/start", {"prompt": "keep me", "session_id": "keep"})
    assert status == 200
    before = goose_file(dirs, "keep").read_bytes()
    yield
    assert goose_file(dirs, "keep").read_bytes() == before, "a bad request changed a session"
    assert_goose_session(goose_file(dirs, "keep"))
    status, body, _ = client.get("/provider/config")
    assert status == 200, "the server still answers after bad input"


@pytest.mark.parametrize("path,body,field", [
    ("/session/start", {}, "prompt"),
    ("/session/start", {"prompt": ""}, "prompt"),
    ("/session/start", {"prompt": 42}, "prompt"),
    ("/session/start", {"prompt": None}, "prompt"),
    ("/session/start", {"prompt": ["a"]}, "prompt"),
    ("/session/start", {"prompt": "x", "extra": 1}, "extra"),
    ("/session/start", {"prompt": "x", "session_id": "../../etc"}, "session_id"),
    ("/session/start", {"prompt": "x", "session_id": ""}, "session_id"),
    ("/session/start", {"prompt": "x", "session_id": "a" * 129}, "session_id"),
    ("/session/start", {"prompt": "x", "session_id": 7}, "session_id"),
    ("/session/start", {"prompt": "x", "working_dir": 3}, "working_dir"),
    ("/session/reply", {}, "prompt"),
    ("/session/reply", {"prompt": "x", "session_id": "a/b"}, "session_id"),
    ("/session/reply", {"prompt": "x", "sessionid": "keep"}, "sessionid"),
    ("/provider/config", {}, "provider"),
    ("/provider/config", {"provider": 1}, "provider"),
])
def test_schema_errors_name_the_field(client, existing, path, body, field):
    status, answer, _ = client.post(path, body)
    assert_error(status, answer, 400, "validation_error")
    assert field in answer["errors"], answer
    assert field in answer["message"]


@pytest.mark.parametrize("payload", [[], "prompt", 5, None])
@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_non_object_json_is_400(client, existing, path, payload):
    status, answer, _ = client.call("POST", path, data=json.dumps(payload), content_type="application/json")
    assert_error(status, answer, 400)


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_bad_json_is_400(client, existing, path):
    status, answer, _ = client.call("POST", path, data='{"prompt": "x",', content_type="application/json")
    assert_error(status, answer, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_wrong_content_type_is_415(client, existing, path, content_type):
    status, answer, _ = client.call("POST", path, data='{"prompt": "x"}', content_type=content_type)
    assert_error(status, answer, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_oversized_body_is_413(client, existing, app, path):
    limit = app.config["MAX_CONTENT_LENGTH"]
    status, answer, _ = client.post(path, {"prompt": "x" * (limit + 1)})
    assert_error(status, answer, 413, "payload_too_large")


@pytest.mark.parametrize("method,path", KEYED_ROUTES)
@pytest.mark.parametrize("key", [None, "wrong", "test-api-key "])
def test_bad_key_is_401(client, existing, method, path, key):
    headers = {"x-api-key": key} if key else {}
    response = client.flask.open(path, method=method, json={"prompt": "x"}, headers=headers)
    assert_error(response.status_code, response.get_json(), 401, "unauthorized")


def test_bearer_token_is_accepted(client, existing):
    response = client.flask.get("/provider/config", headers={"Authorization": "Bearer test-api-key"})
    assert response.status_code == 200


def test_health_needs_no_key(client):
    response = client.flask.get("/health")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("method,path", [("GET", "/session/start"), ("DELETE", "/session/reply"),
                                         ("PUT", "/provider/config"), ("POST", "/health")])
def test_wrong_method_is_405_with_allow(client, existing, method, path):
    status, answer, response = client.call(method, path)
    assert_error(status, answer, 405, "method_not_allowed")
    assert response.headers["Allow"]


def test_unknown_route_is_json_404(client, existing):
    status, answer, _ = client.get("/no/such/thing")
    assert_error(status, answer, 404, "not_found")


def test_unknown_session_is_404(client, existing):
    status, answer, _ = client.post("/session/reply", {"prompt": "x", "session_id": "missing"})
    assert_error(status, answer, 404, "not_found")
    assert "POST /session/start" in answer["message"]


def test_reply_without_any_session_is_404(client):
    status, answer, _ = client.post("/session/reply", {"prompt": "hello"})
    assert_error(status, answer, 404, "not_found")
    assert "start one" in answer["message"]


@pytest.mark.parametrize("working_dir, code", [("relative/dir", "validation_error"),
                                               ("/definitely/not/here", "bad_request")])
def test_bad_working_dir_is_400_and_creates_nothing(client, dirs, working_dir, code):
    status, answer, _ = client.post("/session/start", {"prompt": "x", "working_dir": working_dir})
    assert_error(status, answer, 400, code)
    assert stored_session_ids(dirs) == set()


def test_working_dir_that_is_a_file_is_400(client, dirs):
    target = dirs["work"] / "file.txt"
    target.write_text("x")
    status, answer, _ = client.post("/session/start", {"prompt": "x", "working_dir": str(target)})
    assert_error(status, answer, 400)


def test_taken_session_id_is_409(client, existing):
    status, answer, _ = client.post("/session/start", {"prompt": "x", "session_id": "keep"})
    assert_error(status, answer, 409, "conflict")


def test_unknown_provider_switch_is_400(client, existing):
    status, answer, _ = client.post("/provider/config", {"provider": "skynet", "model": "x"})
    assert_error(status, answer, 400, "bad_request")
    assert "openai" in answer["message"]
