"""Webhooks against a receiver on loopback that checks every signature the way a user's would."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from goose_api import create_app
from tests.fakes.core import Fail, Reply
from tests.support.app import ROOT, ApiClient, settings_for
from tests.support.live import free_port
from tests.support.mcp_fixtures import wait_until


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


SECRET = "test-webhook-secret"


class Receiver:
    """Answers each delivery with the next scripted status (then 200); records only correctly signed ones."""

    def __init__(self, statuses: list[int] | None = None, port: int = 0, secret: str = SECRET):
        self.secret = secret
        self.statuses = list(statuses or [])
        self.deliveries: list[tuple[dict, bytes]] = []
        self.rejected: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                problem = receiver.check(self.headers, body)
                status = 401 if problem else (receiver.statuses.pop(0) if receiver.statuses else 200)
                if problem:
                    receiver.rejected.append(problem)
                else:
                    receiver.deliveries.append((dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def check(self, headers, body: bytes) -> str | None:
        timestamp = headers.get("X-Goose-Timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return "stale or missing timestamp"
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, headers.get("X-Goose-Signature", "")) else "bad signature"

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.deliveries]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver([500])
    yield made
    made.close()


def test_the_final_event_is_signed_and_retried_after_a_500(fake_openai, dirs, receiver):
    app = create_app(settings_for(fake_openai, dirs, webhook_secret=SECRET, webhook_retry_wait=0.2))
    client = ApiClient(app.test_client())
    try:
        fake_openai.add(Reply("hooked"))
        status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "hook", "webhook": receiver.url})
        assert status == 200, body
        wait_until(lambda: len(receiver.deliveries) == 2, 10, "the retry after the 500")
        first, second = receiver.deliveries
        assert first[1] == second[1], "a retry sends the same body"
        assert first[0]["X-Goose-Delivery"] == second[0]["X-Goose-Delivery"]
        payload = receiver.payloads()[0]
        assert (payload["type"], payload["session_id"], payload["run_id"]) == ("done", "hook", body["run_id"])
        assert payload["data"] == {k: v for k, v in body.items() if k != "webhook"}, "the blocking answer"
        assert body["webhook"]["url"] == receiver.url and body["webhook"]["key"] == "default"
        assert "X-Goose-Signature" in body["webhook"]["verify"] and "GET /webhooks/secret" in body["webhook"]["verify"]
        assert receiver.rejected == []
        # the receiver has the POST before the outbox has its answer and removes the delivery
        wait_until(lambda: app.extensions["goose_api"].webhooks.pending() == 0, 10, "the delivery to be done")
    finally:
        app.extensions["goose_api"].close()


def test_a_failed_run_and_the_webhook_url_setting(fake_openai, dirs):
    receiver = Receiver()
    app = create_app(settings_for(fake_openai, dirs, webhook_secret=SECRET, webhook_url=receiver.url))
    client = ApiClient(app.test_client())
    try:
        fake_openai.add(Fail(400, "bad request"))
        status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "failing"})
        assert status == 502, body
        payload = wait_until(lambda: receiver.payloads(), 10, "the delivery")[0]
        assert (payload["type"], payload["data"]["error"]) == ("error", "provider_error")
        status, body, _ = client.post("/session/reply", {"prompt": "y", "session_id": "failing",
                                                         "webhook": "ftp://example.com/x"})
        assert (status, body["error"]) == (400, "validation_error") and "webhook" in body["errors"]
    finally:
        app.extensions["goose_api"].close()
        receiver.close()


def test_pending_deliveries_survive_a_restart(fake_openai, dirs):
    port = free_port()
    settings = settings_for(fake_openai, dirs, webhook_secret=SECRET, webhook_retry_wait=0.2)
    app = create_app(settings)
    fake_openai.add(Reply("nobody listens yet"))
    status, _, _ = ApiClient(app.test_client()).post(
        "/session/start", {"prompt": "x", "session_id": "later", "webhook": f"http://127.0.0.1:{port}/hook"})
    assert status == 200
    outbox = app.extensions["goose_api"].webhooks.outbox
    wait_until(lambda: any(delivery["attempts"] for delivery in outbox.waiting()), 10,
               "a failed first attempt")
    app.extensions["goose_api"].close()
    receiver = Receiver(port=port)
    restarted = create_app(settings)
    try:
        payload = wait_until(lambda: receiver.payloads(), 15, "the delivery after the restart")[0]
        assert payload["session_id"] == "later" and payload["data"]["response"] == "nobody listens yet"
    finally:
        restarted.extensions["goose_api"].close()
        receiver.close()


# --- per-key secrets ------------------------------------------------------------------

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key", "webhook_secret": "bobs-own"})


def alices_secret() -> str:
    return hmac.new(SECRET.encode(), b"alice", hashlib.sha256).hexdigest()


@pytest.fixture
def team(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, webhook_secret=SECRET, api_keys=KEYS, webhook_retries=0))
    yield {name: ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob")} | {
        "default": ApiClient(app.test_client())}
    app.extensions["goose_api"].close()


def test_each_key_reads_its_own_webhook_secret(team):
    answers = {name: client.get("/webhooks/secret")[1] for name, client in team.items()}
    assert answers["alice"] == {"key": "alice", "secret": alices_secret(), "signature_header": "X-Goose-Signature",
                                "timestamp_header": "X-Goose-Timestamp", "signed": "<X-Goose-Timestamp>.<raw body>",
                                "format": "sha256=<hex digest>"}
    assert answers["bob"]["secret"] == "bobs-own"
    assert answers["default"]["secret"] == SECRET
    assert ApiClient(team["alice"].flask, None).get("/webhooks/secret")[0] == 401


def test_each_keys_webhooks_are_signed_with_its_own_secret(team, fake_openai):
    receivers = {"alice": Receiver(secret=alices_secret()), "bob": Receiver(secret="bobs-own")}
    try:
        fake_openai.add(Reply("for alice"), Reply("for bob"))
        status, body, _ = team["alice"].post("/session/start", {"prompt": "x", "webhook": receivers["alice"].url,
                                                                "session_id": "a"})
        assert (status, body["webhook"]["key"]) == (200, "alice")
        status, body, _ = team["bob"].post("/session/start", {"prompt": "x", "webhook": receivers["bob"].url,
                                                              "session_id": "b", "async": True})
        assert (status, body["webhook"]["key"], body["webhook"]["url"]) == (202, "bob", receivers["bob"].url)
        for name, receiver in receivers.items():
            payload = wait_until(receiver.payloads, 10, f"{name}'s delivery")[0]
            assert payload["data"]["response"] == f"for {name}" and receiver.rejected == []
    finally:
        for receiver in receivers.values():
            receiver.close()


def test_a_key_cannot_have_the_server_sign_an_event_for_another_keys_receiver(team, fake_openai):
    bobs = Receiver(secret="bobs-own")
    servers = Receiver(secret=SECRET)
    try:
        fake_openai.add(Reply("I am bob, pay alice"), Reply("I am the server"))
        team["alice"].post("/session/start", {"prompt": "forge", "webhook": bobs.url, "session_id": "f1"})
        team["alice"].post("/session/start", {"prompt": "forge", "webhook": servers.url, "session_id": "f2"})
        wait_until(lambda: len(bobs.rejected) == 1 and len(servers.rejected) == 1, 10, "both deliveries")
        assert bobs.deliveries == [] and servers.deliveries == []
        assert bobs.rejected == ["bad signature"] and servers.rejected == ["bad signature"]
    finally:
        bobs.close()
        servers.close()


def test_the_webhook_url_setting_is_signed_with_the_server_secret(fake_openai, dirs):
    receiver = Receiver()
    app = create_app(settings_for(fake_openai, dirs, webhook_secret=SECRET, webhook_url=receiver.url, api_keys=KEYS))
    try:
        fake_openai.add(Reply("alice's turn"))
        status, body, _ = ApiClient(app.test_client(), "alice-key").post("/session/start", {"prompt": "x"})
        assert status == 200 and "webhook" not in body, "the admin's receiver is not the caller's business"
        payload = wait_until(receiver.payloads, 10, "the delivery")[0]
        assert payload["data"]["response"] == "alice's turn" and receiver.rejected == []
    finally:
        app.extensions["goose_api"].close()
        receiver.close()


def test_the_documented_receiver_check_accepts_a_real_delivery_and_nothing_else(team, fake_openai):
    text = (ROOT / "docs" / "runs.md").read_text().split("## Webhooks", 1)[1]
    namespace: dict = {}
    exec(text.split("```python\n", 1)[1].split("```", 1)[0], namespace)  # the page's snippet, as written
    valid = namespace["valid"]
    receiver = Receiver(secret=alices_secret())
    try:
        fake_openai.add(Reply("checked"))
        team["alice"].post("/session/start", {"prompt": "x", "webhook": receiver.url, "session_id": "d"})
        headers, body = wait_until(lambda: receiver.deliveries, 10, "the delivery")[0]
        secret = team["alice"].get("/webhooks/secret")[1]["secret"]
        assert valid(secret, headers, body)
        assert not valid(secret, headers, body + b" ")
        assert not valid(team["bob"].get("/webhooks/secret")[1]["secret"], headers, body)
        assert not valid(secret, {**headers, "X-Goose-Timestamp": str(int(time.time()) - 600)}, body)
    finally:
        receiver.close()
