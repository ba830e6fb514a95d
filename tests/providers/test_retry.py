"""RetryingProvider against the fake OpenAI API, with real (small) waits."""

from __future__ import annotations

import time

import pytest

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers.base import ProviderReply, TextDelta
from goose_api.providers.openai import OpenAIProvider
from goose_api.providers.retry import RetryingProvider
from tests.fakes.core import Fail, Reply
from tests.fakes.openai import OpenAIFake

HI = [Message.user("hi")]


@pytest.fixture
def fake():
    with OpenAIFake() as server:
        yield server
        server.assert_done()


def wrapped(settings, events):
    return RetryingProvider(OpenAIProvider(settings), settings, base_wait=0.01,
                            on_event=lambda kind, **fields: events.append((kind, fields)))


def kinds(events):
    return [kind for kind, _ in events]


def test_rate_limit_once_then_success(fake):
    fake.add(Fail(429, retry_after=0), Reply("ok", usage=(7, 2)))
    events: list = []
    reply = wrapped(fake.settings(), events).complete("", HI, [])
    assert reply.message.text() == "ok" and len(fake.requests) == 2
    assert kinds(events) == ["call", "error", "retry", "call", "usage"]
    assert events[1][1] == {"provider": "openai", "model": "gpt-4o", "error_kind": "rate_limit",
                            "http_status": 429, "final": False}
    assert events[2][1]["wait"] == 0 and events[2][1]["attempt"] == 1
    assert events[4][1]["input_tokens"] == 7 and events[4][1]["output_tokens"] == 2
    assert events[4][1]["duration"] >= 0


def test_server_errors_until_retries_run_out(fake):
    fake.add(*[Fail(500, "boom")] * 3)
    events: list = []
    with pytest.raises(ProviderError) as caught:
        wrapped(fake.settings(provider_retries=2, provider_retry_max_wait=0.05), events).complete("", HI, [])
    assert caught.value.kind == ProviderError.UNAVAILABLE and len(fake.requests) == 3
    assert kinds(events) == ["call", "error", "retry", "call", "error", "retry", "call", "error"]
    assert [f["final"] for k, f in events if k == "error"] == [False, False, True]
    assert all(0 <= f["wait"] <= 0.05 for k, f in events if k == "retry")


@pytest.mark.parametrize("settings_env, step", [
    ({"OPENAI_API_KEY": "sk-wrong"}, None),
    ({}, Fail(400, code="context_length_exceeded")),
    ({}, Fail(400, "bad messages")),
])
def test_auth_context_and_bad_request_are_not_retried(fake, settings_env, step):
    if step:
        fake.add(step)
    events: list = []
    with pytest.raises(ProviderError):
        wrapped(fake.settings(env=settings_env), events).complete("", HI, [])
    assert len(fake.requests) == 1 and kinds(events) == ["call", "error"] and events[1][1]["final"]


def test_retry_after_is_waited(fake):
    fake.add(Fail(503, retry_after="0.3"), Reply("ok"))
    events: list = []
    started = time.monotonic()
    wrapped(fake.settings(), events).complete("", HI, [])
    assert time.monotonic() - started >= 0.3
    assert [f["wait"] for k, f in events if k == "retry"] == [0.3]


def test_retry_after_longer_than_max_wait_gives_up_at_once(fake):
    fake.add(Fail(429, retry_after=30))
    with pytest.raises(ProviderError) as caught:
        wrapped(fake.settings(provider_retry_max_wait=1.0), []).complete("", HI, [])
    assert caught.value.retry_after == 30
    assert len(fake.requests) == 1, "no retry (after waiting, it would have called again)"


def test_stream_failure_before_first_event_is_retried(fake):
    fake.add(Fail(503, retry_after=0), Reply("streamed", stream=True))
    events = list(wrapped(fake.settings(), []).stream("", HI, []))
    assert isinstance(events[-1], ProviderReply) and events[-1].message.text() == "streamed"
    assert len(fake.requests) == 2


def test_stream_failure_after_first_event_is_not_retried(fake):
    fake.add(Reply("a long streamed answer", stream=True, drop_after=3))
    seen, events = [], []
    with pytest.raises(ProviderError) as caught:
        for event in wrapped(fake.settings(), events).stream("", HI, []):
            seen.append(event)
    assert caught.value.kind == ProviderError.UNAVAILABLE
    assert seen and all(isinstance(e, TextDelta) for e in seen) and len(fake.requests) == 1
    assert kinds(events) == ["call", "error"] and events[1][1]["final"]


def test_backoff_grows_exponentially_and_is_capped(fake):
    settings = fake.settings(provider_retries=10, provider_retry_max_wait=3.0)
    retrying = RetryingProvider(OpenAIProvider(settings), settings, base_wait=0.5, jitter=lambda: 1.0)
    error = ProviderError("openai", ProviderError.UNAVAILABLE, "down")
    assert [retrying.wait_for(error, n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retrying.wait_for(error, 10) is None
    assert retrying.wait_for(ProviderError("openai", ProviderError.AUTH, "no"), 0) is None
