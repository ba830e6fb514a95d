"""Security headers on every answer; CORS off unless cors_origins lists the origin."""

from __future__ import annotations

import pytest

from goose_api import create_app
from tests.support.app import ApiClient, settings_for

ALWAYS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
          "Referrer-Policy": "no-referrer"}


def assert_secure(response, docs: bool = False) -> None:
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert ("script-src 'self'" in csp) if docs else csp.startswith("default-src 'none'")
    assert "unsafe-inline" not in csp.split("script-src")[-1].split(";")[0]


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/health", None), ("GET", "/provider/config", None), ("GET", "/openapi.json", None),
    ("GET", "/nowhere", None), ("DELETE", "/session/start", None), ("POST", "/session/start", {"prompt": ""}),
    ("GET", "/metrics", None), ("GET", "/docs/assets/nothing.js", None)])
def test_every_answer_carries_the_headers(client, method, path, body):
    _, _, response = client.call(method, path, json=body)
    assert_secure(response)
    assert ApiClient(client.flask, key="bad").call(method, path).__getitem__(2).headers["X-Frame-Options"] == "DENY"


def test_the_docs_page_may_load_its_own_scripts_only(client):
    for path in ("/docs", "/docs/init.js", "/docs/assets/swagger-ui-bundle.js"):
        response = client.get(path)[2]
        assert_secure(response, docs=True)
        response.close()  # the asset is a file response


def test_cors_is_off_by_default(client):
    _, _, response = client.get("/provider/config", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    _, _, preflight = client.call("OPTIONS", "/session/start", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.fixture
def cors_client(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, cors_origins=("https://app.example",)))
    yield ApiClient(app.test_client())
    app.extensions["goose_api"].close()


def test_preflight_for_a_listed_origin(cors_client):
    _, _, response = ApiClient(cors_client.flask, key=None).call("OPTIONS", "/session/start", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "x-api-key" in response.headers["Access-Control-Allow-Headers"]
    assert_secure(response)


def test_real_requests_from_a_listed_origin_and_others(cors_client):
    _, _, allowed = cors_client.get("/provider/config", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Origin" in allowed.headers["Vary"]
    _, _, other = cors_client.get("/provider/config", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    _, _, preflight = ApiClient(cors_client.flask, key=None).call("OPTIONS", "/session/start", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers
