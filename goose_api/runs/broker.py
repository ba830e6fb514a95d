"""The turn queue: Dramatiq on Redis, between the web processes that start turns and the workers that run them.

A web process with ``REDIS_URL`` never runs a turn: ``RunService`` writes the
run's record, takes the session's lease and ``send``s one message naming the
run. A ``goose-api worker`` process consumes the queue with
``worker_threads`` threads (a turn mostly waits on the model), runs the turn
on the message's thread and returns when the run has its final state: only
then does Dramatiq acknowledge the message. A worker that dies holding
messages stops sending Dramatiq's heartbeat; after ``run_lease_timeout``
another worker's queue maintenance puts them back on the queue, and the
worker that gets one finishes the run (``RunService.run_queued``).

Until a worker claims it, a queued run has no owner process; its marker key
``goose:queued:<run_id>`` says it is still waiting in the queue (readers use
it instead of a heartbeat), and the claim deletes it.

The broker runs without Dramatiq's default middleware: no time limit (a turn
may wait minutes on a model), no retries (a run ends with its own error, and
redelivery is only for a dead worker's messages), no age limit.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import dramatiq
import redis
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

from goose_api.runs.redis_link import RedisLink, unreachable

log = logging.getLogger(__name__)

ACTOR = "goose_turn"
NAMESPACE = "goose-dramatiq"
MAINTENANCE_SHARE = 0.02   # of the broker's Redis calls that also requeue dead workers' messages
QUEUED_MARK_TTL = 7 * 86400
IDLE_POLL_MS = 100         # how long an idle worker waits between two looks at the queue (at most)

Handler = Callable[..., None]


class TurnBroker:
    def __init__(self, link: RedisLink, queue: str, heartbeat_timeout: float):
        self.link = link
        self.queue = queue
        self.broker = RedisBroker(client=link.client, middleware=[], namespace=NAMESPACE,
                                  heartbeat_timeout=int(heartbeat_timeout * 1000),
                                  maintenance_chance=int(MAINTENANCE_SCALE * MAINTENANCE_SHARE))

    def _mark(self, run_id: str) -> str:
        return self.link.key("queued", run_id)

    def send(self, delay: float | None = None, **message: Any) -> None:
        """Queue a run (``message`` names it: session_id, run_id, spec, base, lease), due after ``delay`` seconds.

        Raises:
            NotReady: Redis cannot be reached (nothing was queued).
        """
        run_id = message["run_id"]
        with self.link.reached() as client:
            client.set(self._mark(run_id), "1", ex=QUEUED_MARK_TTL)
        try:
            self.broker.enqueue(dramatiq.Message(queue_name=self.queue, actor_name=ACTOR, args=(),
                                                 kwargs=message, options={}),
                                delay=int(delay * 1000) if delay else None)
        except (redis.RedisError, dramatiq.errors.ConnectionError) as exc:
            raise unreachable(exc) from None

    def waiting(self, run_id: str) -> bool:
        """Whether the run is still in the queue, unclaimed.

        Raises:
            NotReady: Redis cannot be reached.
        """
        with self.link.reached() as client:
            return bool(client.exists(self._mark(run_id)))

    def claim(self, run_id: str) -> None:
        with self.link.reached() as client:
            client.delete(self._mark(run_id))

    def worker(self, handle: Handler, threads: int) -> dramatiq.Worker:
        """A Dramatiq worker running ``handle(**message)`` on ``threads`` threads (not started)."""
        dramatiq.Actor(handle, broker=self.broker, actor_name=ACTOR, queue_name=self.queue, priority=0,
                       options={})
        worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=IDLE_POLL_MS)
        worker.queue_prefetch = threads  # a worker takes no more turns than it has threads: the rest go elsewhere
        return worker

    def backlog(self) -> int:
        """Messages waiting in the queue (not yet taken by a worker)."""
        with self.link.reached() as client:
            return int(client.llen(f"{NAMESPACE}:{self.queue}"))
