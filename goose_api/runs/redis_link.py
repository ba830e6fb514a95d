"""One process's connection to Redis (``REDIS_URL``), and what its failures mean to a request.

Redis carries what crosses hosts while a turn runs: the turn queue (Dramatiq's
broker, ``broker.py``), the session leases (``leases.py``), and the wake-ups of
event readers and run owners (``signals.py``). When Redis cannot be reached a
request gets 503 ``not_ready`` with ``Retry-After`` (``reached``); the client
reconnects by itself on the next call once Redis is back.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import redis

from goose_api.errors import NotReady

log = logging.getLogger(__name__)

RETRY_AFTER = "2"
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 5.0
MAX_CONNECTIONS = 64    # per process; a command holds one for a round trip


def unreachable(exc: BaseException) -> NotReady:
    """The 503 a request gets while Redis is away."""
    return NotReady(f"Redis (REDIS_URL) cannot be reached ({type(exc).__name__}); retry in a few seconds",
                    details={"checks": [{"name": "redis", "ok": False}]}, headers={"Retry-After": RETRY_AFTER})


class RedisLink:
    """A connection pool to ``url`` and the key names goose-api uses there (all under ``prefix``)."""

    def __init__(self, url: str, *, prefix: str = "goose"):
        self.url = url
        self.prefix = prefix
        # A blocking pool: under a burst a thread waits a moment for a free connection instead of failing
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=SOCKET_TIMEOUT,
                                                     socket_connect_timeout=CONNECT_TIMEOUT,
                                                     socket_timeout=SOCKET_TIMEOUT, health_check_interval=10)
        self.client = redis.Redis(connection_pool=pool)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @contextmanager
    def reached(self) -> Iterator[redis.Redis]:
        """The client; a Redis failure inside becomes ``NotReady`` (503, ``Retry-After``)."""
        try:
            yield self.client
        except redis.RedisError as exc:
            log.warning("redis unreachable: %s", type(exc).__name__)
            raise unreachable(exc) from None

    def problem(self) -> str | None:
        """Why Redis cannot serve now (for ``/ready``), or None."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            return f"Redis (REDIS_URL) cannot be reached: {type(exc).__name__}"
        return None

    def subscriber(self) -> redis.Redis:
        """A client of its own for a pub/sub listener: no socket timeout (it waits for messages)."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=CONNECT_TIMEOUT, health_check_interval=10)

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()
