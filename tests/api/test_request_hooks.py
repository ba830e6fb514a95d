"""What every request gets: a request id, the key check, JSON-only bodies, default headers."""

from __future__ import annotations

import re

import pytest


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


def test_request_ids_are_generated_unique_or_echoed_when_well_formed(client):
    ids = [client.get("/extensions/list")[2].headers["X-Request-ID"] for _ in range(3)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 3
    given = client.get("/extensions/list", headers={"X-Request-ID": "trace-42:a.b"})[2]
    assert given.headers["X-Request-ID"] == "trace-42:a.b"
    bad = client.get("/extensions/list", headers={"X-Request-ID": "no spaces allowed"})[2]
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])


def test_default_headers_and_key_check(client):
    status, _, response = client.get("/extensions/list")
    assert status == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Cache-Control"] == "no-store"
    client.key = None
    status, body, response = client.get("/extensions/list")
    assert status == 401 and body["error"] == "unauthorized" and response.headers["X-Request-ID"]
    assert client.get("/health")[0] == 200


def test_a_body_that_is_not_json_is_refused(client):
    status, body, _ = client.call("POST", "/session/start", data="prompt=hi",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and body["status"] == "error"
