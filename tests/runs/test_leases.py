"""Session leases on a real Redis: one holder at a time, handed over by token, never freed by a stale holder."""

from __future__ import annotations

import pytest

from goose_api.errors import NotReady, SessionBusy
from goose_api.runs.leases import SessionLeases
from goose_api.runs.redis_link import RedisLink
from tests.support.mcp_fixtures import wait_until
from tests.support.services import free_port


@pytest.fixture
def leases(redis_url):
    link = RedisLink(redis_url, prefix=f"test-{free_port()}")
    yield SessionLeases(link, ttl=30.0)
    link.close()


def test_a_held_session_is_busy_until_released(leases):
    lease = leases.acquire("s1")
    with pytest.raises(SessionBusy) as busy:
        leases.acquire("s1")
    assert busy.value.headers["Retry-After"] == "1"
    assert leases.acquire("s2").is_locked  # other sessions are free
    lease.release()
    assert not lease.is_locked
    assert leases.acquire("s1").token != lease.token


def test_a_lease_handed_to_another_process_is_released_there(leases):
    lease = leases.acquire("s1", ttl=3600)
    adopted = leases.adopt("s1", lease.token)  # the worker, from the queued message
    assert leases.link.client.pttl(leases.link.key("lease", "s1")) <= 30_000  # back to the run lease
    adopted.release()
    assert leases.holder("s1") is None


def test_an_expired_holder_cannot_free_or_renew_the_next_holders_lease(leases):
    stale = leases.acquire("s1", ttl=0.05)
    wait_until(lambda: leases.holder("s1") is None, 10, "the lease to expire")
    current = leases.acquire("s1")
    assert stale.refresh() is False
    stale.release()
    leases.break_("s1", stale.token)
    assert leases.holder("s1") == current.token


def test_breaking_a_dead_holders_lease_frees_the_session(leases):
    dead = leases.acquire("s1")
    leases.break_("s1", dead.token)
    assert leases.acquire("s1").is_locked


def test_redis_away_is_503_not_ready_with_retry_after():
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(NotReady) as away:
        SessionLeases(link, ttl=30.0).acquire("s1")
    assert away.value.status == 503 and away.value.code == "not_ready"
    assert away.value.headers["Retry-After"] and "REDIS_URL" in away.value.message
    assert link.problem().startswith("Redis (REDIS_URL) cannot be reached")
    link.close()
