"""Every class of GooseApiError, provoked from a real server (and the mapping for the rest)."""

from __future__ import annotations

from typing import Iterator

import pytest

from goose_api.client import GooseClient
from goose_api.client.errors import (
    AuthError,
    ConflictError,
    ConnectionFailed,
    ExtensionError,
    GooseApiError,
    NotFoundError,
    NotReadyError,
    ProviderError,
    RateLimitError,
    RunInterruptedError,
    ServerError,
    SessionBusyError,
    UpstreamError,
    ValidationError,
    error_from_answer,
)
from tests.fakes.core import Fail, Reply
from tests.support.app import API_KEY
from tests.support.gates import Gate
from tests.support.live import LiveServer, free_port, live_env, start_live_server
from tests.support.shared_server import fake, kill_worker_of, module_server, shared_fake  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def server(shared_fake, tmp_path_factory) -> Iterator[LiveServer]:
    yield from module_server(shared_fake, tmp_path_factory, "errors_server", GOOSE_API_EXTENSION_COMMANDS='["uvx"]')


@pytest.fixture
def client(server) -> Iterator[GooseClient]:
    with GooseClient(server.url, API_KEY, timeout=20) as goose:
        yield goose


def test_a_wrong_key_is_an_auth_error(server):
    with pytest.raises(AuthError) as caught:
        GooseClient(server.url, "not-the-key").sessions()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")


def test_a_command_outside_extension_commands_is_a_403_auth_error(client):
    with pytest.raises(AuthError) as caught:
        client.add_extension(type="stdio", name="evil", cmd="/bin/sh", args=["-c", "true"])
    assert (caught.value.status, caught.value.code) == (403, "forbidden") and "extension_commands" in str(caught.value)


def test_unknown_session_and_extension_are_not_found(client):
    with pytest.raises(NotFoundError) as caught:
        client.session("c_never")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError) as caught:
        client.remove_extension("never_added")  # the seed's error shape: "error": true, "code"
    assert caught.value.code == "not_found" and caught.value.body["error"] is True


def test_bad_requests_are_validation_errors(client):
    with pytest.raises(ValidationError) as caught:
        client.start("")
    assert caught.value.status == 400 and "prompt" in caught.value.body["errors"]
    with pytest.raises(ValidationError) as caught:
        client.add_extension(type="carrier_pigeon", name="x")
    assert caught.value.code == "validation_error"
    with pytest.raises(ValidationError) as caught:
        client.set_provider("anthropic")  # no ANTHROPIC_API_KEY on this server
    assert "ANTHROPIC_API_KEY" in caught.value.message


def test_a_busy_session_and_nothing_to_cancel_are_conflicts(client, fake):
    gate = Gate()
    fake.add(Reply("finally", gate=gate))
    accepted = client.start("slow", "c_busy", background=True)
    with pytest.raises(SessionBusyError) as caught:
        client.reply("are you done?", "c_busy")
    busy = caught.value
    assert (busy.status, busy.code, busy.active_run_id) == (409, "session_busy", accepted.run_id)
    assert busy.retry_after is not None and busy.retry_after > 0
    gate.open()
    client.wait("c_busy", accepted.run_id)
    with pytest.raises(ConflictError) as caught:
        client.cancel("c_busy")
    assert caught.value.code == "no_active_run" and not isinstance(caught.value, SessionBusyError)


def test_provider_failures_are_provider_errors_blocking_and_streamed(client, fake):
    fake.add(Fail(401, code="auth"), Fail(401, code="auth"))
    with pytest.raises(ProviderError) as caught:
        client.start("hi", "c_provider_auth")
    error = caught.value
    assert (error.status, error.code, error.provider, error.kind) == (502, "provider_error", "openai", "authentication")
    with pytest.raises(ProviderError) as caught:
        list(client.stream("again?", "c_provider_auth"))
    assert caught.value.kind == "authentication" and caught.value.status == 502


def test_a_provider_rate_limit_is_a_rate_limit_error(client, fake):
    fake.add(Fail(429, retry_after=0), Fail(429, retry_after=0))
    with pytest.raises(RateLimitError) as caught:
        client.start("hi", "c_rate")
    assert (caught.value.status, caught.value.code, caught.value.body["kind"]) == (503, "provider_error", "rate_limit")
    assert caught.value.retry_after == 1.0


def test_connection_refused_is_connection_failed():
    with pytest.raises(ConnectionFailed) as caught:
        GooseClient(f"http://127.0.0.1:{free_port()}", API_KEY).health()
    assert caught.value.status is None and "connection refused" in caught.value.message


@pytest.mark.live
def test_not_ready_and_key_throttling(fake_openai, dirs, tmp_path):
    """A provider without credentials: 503 not_ready; failed keys past the limit: 429 with Retry-After."""
    env = live_env(fake_openai, dirs, GOOSE_API_PROVIDER="anthropic", GOOSE_API_AUTH_FAILURE_LIMIT="1")
    live = start_live_server(env, tmp_path, tmp_path / "gunicorn.log")
    try:
        goose = GooseClient(live.url, API_KEY)
        with pytest.raises(NotReadyError) as caught:
            goose.ready()
        assert caught.value.status == 503 and "ANTHROPIC_API_KEY" in caught.value.message
        assert any(not check["ok"] for check in caught.value.body["checks"])
        with pytest.raises(NotReadyError):
            goose.start("hi", "c_not_ready")
        with pytest.raises(AuthError):
            GooseClient(live.url, "wrong").sessions()
        with pytest.raises(RateLimitError) as caught:
            GooseClient(live.url, "wrong").sessions()
        assert (caught.value.status, caught.value.code) == (429, "too_many_requests") and caught.value.retry_after
    finally:
        live.stop()


@pytest.mark.live
@pytest.mark.slow
def test_a_run_whose_worker_died_is_interrupted(fake_openai, dirs, tmp_path):
    gate = Gate()
    fake_openai.add(Reply("never delivered", gate=gate))
    live = start_live_server(live_env(fake_openai, dirs), tmp_path, tmp_path / "gunicorn.log")
    try:
        goose = GooseClient(live.url, API_KEY)
        accepted = goose.start("hi", "c_killed", background=True)
        gate.wait_reached()  # in flight when the worker dies
        kill_worker_of(live, "c_killed")
        with pytest.raises(RunInterruptedError) as caught:
            goose.wait("c_killed", accepted.run_id, timeout=20)
        assert (caught.value.status, caught.value.code, caught.value.reason) == (503, "run_interrupted", "owner_gone")
    finally:
        gate.open()
        live.stop()


def test_every_status_maps_to_its_class():
    """The mapping for answers the tests above cannot provoke from this client (it always sends JSON)."""
    cases = [(415, {"status": "error", "error": "unsupported_media_type", "message": "m"}, ValidationError),
             (413, {"status": "error", "error": "payload_too_large", "message": "m"}, ValidationError),
             (405, {"status": "error", "error": "method_not_allowed", "message": "m"}, ValidationError),
             (502, {"status": "error", "error": "extension_error", "message": "m"}, ExtensionError),
             (502, {"error": True, "code": "extension_error", "message": "m"}, ExtensionError),
             (502, {"status": "error", "error": "bad_gateway", "message": "m"}, UpstreamError),
             (500, {"status": "error", "error": "internal_error", "message": "m"}, ServerError),
             (409, {"status": "error", "error": "idempotency_in_progress", "message": "m"}, ConflictError),
             (422, {"status": "error", "error": "idempotency_key_reused", "message": "m"}, ValidationError),
             (503, {"status": "error", "error": "server_stopping", "message": "m"}, UpstreamError),
             (504, None, ServerError)]
    for status, body, expected in cases:
        error = error_from_answer(status, body, {}, "<html>Gateway Timeout</html>")
        assert type(error) is expected, (status, body)
        assert isinstance(error, GooseApiError) and error.status == status
    assert error_from_answer(504, None, {}, "<html>Gateway Timeout</html>").message == "<html>Gateway Timeout</html>"
