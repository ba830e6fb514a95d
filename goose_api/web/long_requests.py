"""Long-lived requests under a budget, so that short requests always find a thread.

A worker answers requests on at most ``threads`` threads, and a long-lived
request keeps one for as long as it lasts: an event stream until its run ends,
a blocking turn or ``Prefer: wait`` until the answer, a cancel until the run
stopped, a summary until the model wrote it. Per worker, at most
``long_request_limit`` of them are open at once, and at most
``long_request_key_limit`` per API key; one more is answered 429 with
``Retry-After`` before it starts anything (no run, no session). The threads
above the limit stay free for short requests: ``/health``, ``/ready``,
``GET /session/<id>``, turns started in the background. docs/architecture.md
says why this and not another worker class.

A view calls ``hold()`` before its long part; the slot is given back when its
answer is ready, or, for a stream, when the stream is closed (its last event,
or its client going away).
"""

from __future__ import annotations

import threading
from collections import Counter

from flask import Flask, current_app, g

from goose_api.errors import TooManyRequests

RETRY_AFTER = "5"  # seconds; streams and waits last about as long as a turn
EXTENSION = "goose_api.long_requests"


class LongRequestBudget:
    """Counts of open long-lived requests, in total and per key (one worker process)."""

    def __init__(self, limit: int, key_limit: int):
        self.limit = limit
        self.key_limit = key_limit
        self._lock = threading.Lock()
        self._open = 0
        self._by_key: Counter[str] = Counter()

    def take(self, key: str) -> "Slot":
        """A slot for one long-lived request of ``key``'s holder.

        Raises:
            TooManyRequests: the worker or the key has its limit open already (with ``Retry-After``).
        """
        with self._lock:
            if self._by_key[key] >= self.key_limit:
                raise TooManyRequests(
                    f"This API key has {self.key_limit} event streams and blocking requests open, its limit; "
                    "close one, or start turns in the background (\"async\": true) and poll GET /session/<id>",
                    details={"limit": self.key_limit, "scope": "key"}, headers={"Retry-After": RETRY_AFTER})
            if self._open >= self.limit:
                raise TooManyRequests(
                    f"The server has {self.limit} event streams and blocking requests open, its limit; retry "
                    "later, or start turns in the background (\"async\": true) and poll GET /session/<id>",
                    details={"limit": self.limit, "scope": "server"}, headers={"Retry-After": RETRY_AFTER})
            self._open += 1
            self._by_key[key] += 1
        return Slot(self, key)

    def open(self, key: str | None = None) -> int:
        """Long-lived requests open now (of ``key``, or in total)."""
        with self._lock:
            return self._open if key is None else self._by_key[key]

    def _give_back(self, key: str) -> None:
        with self._lock:
            self._open -= 1
            self._by_key[key] -= 1
            if not self._by_key[key]:
                del self._by_key[key]


class Slot:
    """One long-lived request's place in the budget; ``release`` gives it back (once, however often called)."""

    def __init__(self, budget: LongRequestBudget, key: str):
        self._budget = budget
        self._key = key
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._budget._give_back(self._key)


def register_long_requests(app: Flask, budget: LongRequestBudget) -> None:
    """Keep ``budget`` on the app and give every slot back when its request's answer is done."""
    app.extensions[EXTENSION] = budget

    @app.after_request
    def _release_when_streamed(response):
        if response.is_streamed and g.get("long_request") is not None:
            # A stream runs after the view returned: its slot lives until the answer is closed
            # (its last event, or the client going away); gunicorn always closes it.
            response.call_on_close(g.pop("long_request").release)
        return response

    @app.teardown_request
    def _release_when_answered(exc):
        slot = g.pop("long_request", None)
        if slot is not None:  # a whole answer (or an error) is ready: the waiting is over
            slot.release()


def try_hold() -> bool:
    """``hold()`` if a slot is free; False (and no slot) if not."""
    try:
        hold()
    except TooManyRequests:
        return False
    return True


def hold() -> None:
    """Take a long-lived slot for this request (once per request; the caller's key counts).

    Raises:
        TooManyRequests: the worker's or the key's limit is reached.
    """
    if g.get("long_request") is not None:
        return
    client = g.get("client")
    g.long_request = current_app.extensions[EXTENSION].take(client.name if client is not None else "-")
