"""Throttling of failed key checks, per client address, shared by every worker.

Each address may fail the key check ``auth_failure_limit`` times within
``auth_failure_window`` seconds; after that every request from it that needs a
key is answered 429 (with ``Retry-After``) until the window ends, whether or
not its key is right: answering a right key differently would tell a guesser
when it found one. The counts are kept by the backend's ``FailureStorage``
(files: a small SQLite file in the data dir, ``storage/auth_failures.py``;
PostgreSQL: a table), so all workers, hosts and a restarted server share them.

Every request that needs a key is checked, so the check must be cheap: an
address found unthrottled is not looked up again until the storage's change
count moves (a throttle can only start with a new failure; time only ends one).

The address is the TCP peer (``REMOTE_ADDR``). Behind a reverse proxy that is
the proxy: then every client shares one budget (see docs/security.md).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from goose_api.errors import TooManyRequests
from goose_api.storage.interfaces import FailureStorage

MAX_REMEMBERED = 10_000  # unthrottled addresses remembered per process before starting over


class AuthThrottle:
    def __init__(self, failures: FailureStorage, limit: int, window: float, clock: Callable[[], float] = time.time):
        self.failures = failures
        self.limit = limit
        self.window = window
        self.clock = clock
        self._clear: dict[str, int] = {}  # address -> change count when it was last found unthrottled

    def check(self, address: str) -> None:
        """Refuse an address that used up its failures in the current window.

        Raises:
            TooManyRequests: with ``Retry-After`` set to the seconds left in the window.
        """
        changes = self.failures.changes()
        if self._clear.get(address) == changes:
            return  # no key check failed anywhere since this address was last found unthrottled
        row = self.failures.lookup(address)
        if row is not None:
            started, count = row
            left = started + self.window - self.clock()
            if count >= self.limit and left > 0:
                raise TooManyRequests("Too many failed API key checks from this address; retry later",
                                      headers={"Retry-After": str(max(1, math.ceil(left)))})
        if len(self._clear) >= MAX_REMEMBERED:
            self._clear.clear()
        self._clear[address] = changes

    def failed(self, address: str) -> None:
        """Count one failed key check for ``address`` (and forget windows that ended)."""
        self.failures.record(address, self.clock(), self.window)

    def close(self) -> None:
        self.failures.close()
