"""Session leases in Redis: one turn at a time per session, across hosts.

On one host a session's turn lock is an ``flock`` that the OS drops when its
process dies. Across hosts it is a Redis key ``goose:lease:<session>`` holding
a random token, set only if absent and with an expiry: whoever holds the
token holds the session. The web process that starts a turn takes the lease
and hands its token to the worker in the queued message (``adopt``); the
worker's heartbeat renews it (``refresh``) and releasing deletes it only if the
token is still the holder's (a Lua compare-and-delete). A worker killed with
SIGKILL stops renewing: the lease expires after ``run_lease_timeout`` (or is
broken at once by whoever finds its run's owner gone, ``break_``).

The lease is a guard, not the truth: the run's record says which run owns
the session, and a lease taken over a record whose run is alive is given back
(``RunService``).
"""

from __future__ import annotations

import logging
import secrets

from goose_api.errors import NotReady, SessionBusy
from goose_api.runs.redis_link import RedisLink

log = logging.getLogger(__name__)

QUEUED_TTL = 3600.0   # a lease handed to a queued turn: held until a worker adopts it (shortened then)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class SessionLease:
    """A session held through Redis; ``release`` it once (from any thread, or any process by ``adopt``)."""

    def __init__(self, leases: "SessionLeases", session_id: str, token: str):
        self.leases = leases
        self.session_id = session_id
        self.token = token
        self._held = True

    @property
    def is_locked(self) -> bool:
        return self._held

    def refresh(self, ttl: float | None = None) -> bool:
        """Renew the expiry; False when the lease was lost (expired and taken, or broken)."""
        return self.leases.refresh(self.session_id, self.token, ttl)

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                self.leases.release(self.session_id, self.token)
            except NotReady:  # Redis is away: the lease expires by itself
                log.warning("session lease not released session=%s: Redis unreachable", self.session_id)

    def __enter__(self) -> SessionLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SessionLeases:
    def __init__(self, link: RedisLink, ttl: float):
        self.link = link
        self.ttl = ttl
        self._release = link.client.register_script(_RELEASE)
        self._refresh = link.client.register_script(_REFRESH)

    def _key(self, session_id: str) -> str:
        return self.link.key("lease", session_id)

    def acquire(self, session_id: str, ttl: float | None = None) -> SessionLease:
        """Take the session's lease without waiting.

        Raises:
            SessionBusy: another turn holds it. NotReady: Redis cannot be reached.
        """
        token = secrets.token_hex(16)
        with self.link.reached() as client:
            taken = client.set(self._key(session_id), token, nx=True, px=_ms(ttl or self.ttl))
        if not taken:
            raise SessionBusy(f"Session {session_id} is busy with another turn; retry when it finishes",
                              headers={"Retry-After": "1"})
        return SessionLease(self, session_id, token)

    def adopt(self, session_id: str, token: str) -> SessionLease:
        """The lease a queued turn was handed (its expiry set back to ``ttl``); held or not, it is the turn's."""
        lease = SessionLease(self, session_id, token)
        lease.refresh()
        return lease

    def refresh(self, session_id: str, token: str, ttl: float | None = None) -> bool:
        with self.link.reached():
            return bool(self._refresh(keys=[self._key(session_id)], args=[token, _ms(ttl or self.ttl)]))

    def release(self, session_id: str, token: str) -> None:
        with self.link.reached():
            self._release(keys=[self._key(session_id)], args=[token])

    def break_(self, session_id: str, token: str | None) -> None:
        """Free a session whose holder is gone (its run's owner died); only that holder's lease."""
        if token:
            self.release(session_id, token)

    def holder(self, session_id: str) -> str | None:
        with self.link.reached() as client:
            value = client.get(self._key(session_id))
        return value.decode() if value is not None else None


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
