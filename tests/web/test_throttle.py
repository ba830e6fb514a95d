"""Failed-auth throttling: 429 with Retry-After after a burst, per address, shared by workers."""

from __future__ import annotations

import math
import time

import pytest

from goose_api import create_app
from goose_api.errors import TooManyRequests
from goose_api.storage.auth_failures import SqliteFailures
from goose_api.web.throttle import AuthThrottle
from tests.support.app import ApiClient, settings_for


@pytest.fixture
def strict_app(fake_openai, dirs):
    apps = [create_app(settings_for(fake_openai, dirs, auth_failure_limit=3, auth_failure_window=60))
            for _ in range(2)]  # two "workers" sharing one data dir
    yield apps
    for app in apps:
        app.extensions["goose_api"].close()


def call(app, key, address="10.0.0.1"):
    return ApiClient(app.test_client(), key).get("/provider/config", environ_base={"REMOTE_ADDR": address})


def test_a_burst_of_bad_keys_is_throttled_with_retry_after(strict_app):
    app = strict_app[0]
    began = time.monotonic()  # the window (60 s) starts at the first failure, a moment after this
    assert [call(app, "wrong")[0] for _ in range(3)] == [401, 401, 401]
    status, body, response = call(app, "wrong")
    elapsed = time.monotonic() - began
    assert (status, body["error"]) == (429, "too_many_requests")
    assert math.ceil(60 - elapsed) <= int(response.headers["Retry-After"]) <= 60, "the seconds left in the window"
    # a right key from the same address is refused too: a guesser must not learn it found one
    assert call(app, "test-api-key")[0] == 429
    assert call(app, "test-api-key", address="10.0.0.2")[0] == 200  # other addresses are not affected
    assert call(app, None, address="10.0.0.1")[0] == 429


def test_the_count_is_shared_between_workers(strict_app):
    first, second = strict_app
    call(first, "wrong")
    call(second, "wrong")
    call(first, "wrong")
    assert call(second, "test-api-key")[0] == 429


def test_public_endpoints_are_not_throttled(strict_app):
    app = strict_app[0]
    for _ in range(4):
        call(app, "wrong")
    assert ApiClient(app.test_client(), None).get("/health", environ_base={"REMOTE_ADDR": "10.0.0.1"})[0] == 200


def test_the_window_ends(tmp_path):
    now = [1000.0]
    throttle = AuthThrottle(SqliteFailures(tmp_path / "t.sqlite3"), limit=2, window=10, clock=lambda: now[0])
    try:
        throttle.failed("a")
        throttle.check("a")
        throttle.failed("a")
        with pytest.raises(TooManyRequests) as refused:
            throttle.check("a")
        assert refused.value.headers["Retry-After"] == "10"
        now[0] += 9.5
        with pytest.raises(TooManyRequests) as refused:
            throttle.check("a")
        assert refused.value.headers["Retry-After"] == "1"
        now[0] += 0.5
        throttle.check("a")          # the window is over
        throttle.failed("a")         # and a new one starts at 1
        throttle.check("a")
    finally:
        throttle.close()
