"""Wake-ups that cross hosts: event readers and run owners in other processes hear of changes at once.

On one host the owner of a run wakes the readers of its event log through
``LogSignal`` (same process) and the others poll the file; cancels and
approval decisions bump the ``steering`` counter in the data dir. Across hosts:

- ``RedisLogSignal``: an append is published on the Redis channel
  ``goose:events`` (the message is the log's key, ``<session>/<run>``); every
  process listens on one connection and wakes its local readers of that log.
  Readers still look at the log every second, so a lost message (Redis away
  for a moment) delays an event by a second at most, never loses it: the
  events themselves are stored by the run state's backend.
- ``RedisChangeCounter``: the steering counter as a Redis integer (``INCR`` /
  ``GET``), read by every run owner's watcher each ``run_poll_interval``.
"""

from __future__ import annotations

import logging
import threading

import redis

from goose_api.runs.event_log import LogSignal
from goose_api.runs.redis_link import RedisLink

log = logging.getLogger(__name__)

RECONNECT_WAIT = 1.0


class RedisLogSignal(LogSignal):
    crosses_hosts = True

    def __init__(self, link: RedisLink):
        super().__init__()
        self.link = link
        self.channel = link.key("events")
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = threading.Event()
        self.connected = threading.Event()  # the listener is subscribed (tests and /ready)

    def notify(self, key: str) -> None:
        super().notify(key)
        try:
            self.link.client.publish(self.channel, key)
        except redis.RedisError as exc:  # readers elsewhere see the event at their next look
            log.warning("event wake-up not published: %s", type(exc).__name__)

    def listen(self, key: str):
        self.start()
        return super().listen(key)

    def start(self) -> None:
        with self._start_lock:
            if not self._closed.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="event-signal", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._closed.set()

    def _loop(self) -> None:
        while not self._closed.is_set():
            client = self.link.subscriber()
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                self.connected.set()
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        LogSignal.notify(self, message["data"].decode())
                pubsub.close()
            except redis.RedisError as exc:
                self.connected.clear()
                log.warning("event wake-ups lost until Redis is back: %s", type(exc).__name__)
                self._closed.wait(RECONNECT_WAIT)
            finally:
                client.close()


class RedisChangeCounter:
    """``ChangeCounter``'s two methods over a Redis integer; the value only means "different from before"."""

    def __init__(self, link: RedisLink, name: str):
        self.link = link
        self.key = link.key("counter", name)
        self._last = 0

    def value(self) -> int:
        try:
            raw = self.link.client.get(self.key)
        except redis.RedisError:
            return self._last  # Redis is away: nothing seen to change; the heartbeat look still happens
        self._last = int(raw or 0)
        return self._last

    def bump(self) -> None:
        with self.link.reached() as client:
            client.incr(self.key)
