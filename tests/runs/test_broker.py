"""The turn queue on a real Redis through Dramatiq: a message reaches a worker once, a dead worker's comes back."""

from __future__ import annotations

import queue

import pytest

from goose_api.errors import NotReady
from goose_api.runs.broker import TurnBroker
from goose_api.runs.redis_link import RedisLink
from tests.support.services import free_port

WAIT = 60.0


@pytest.fixture
def link(redis_url):
    link = RedisLink(redis_url, prefix=f"test-{free_port()}")
    yield link
    link.close()


def message(run_id: str) -> dict:
    return {"session_id": "s1", "run_id": run_id, "spec": {"run_id": run_id, "kind": "start"}, "base": 0,
            "lease": "token"}


def test_a_queued_run_is_marked_until_claimed_and_reaches_one_worker(link):
    broker = TurnBroker(link, f"q{free_port()}", heartbeat_timeout=30.0)
    broker.send(**message("run_1"))
    assert broker.waiting("run_1") and broker.backlog() == 1
    got: queue.Queue = queue.Queue()
    worker = broker.worker(lambda **m: got.put(m), threads=2)
    worker.start()
    try:
        assert got.get(timeout=WAIT) == message("run_1")
    finally:
        worker.stop(timeout=10_000)
    assert broker.backlog() == 0
    assert broker.waiting("run_1")  # the mark stays until the run is claimed (RunService.run_queued)
    broker.claim("run_1")
    assert not broker.waiting("run_1")


def test_a_dead_workers_message_goes_to_another_worker(link):
    name = f"q{free_port()}"
    dead = TurnBroker(link, name, heartbeat_timeout=0.5)
    dead.send(**message("run_2"))
    taken = dead.broker.consume(name, prefetch=1, timeout=100)
    assert next(m for m in taken if m is not None).kwargs["run_id"] == "run_2"  # fetched, never acknowledged
    assert dead.backlog() == 0
    other = RedisLink(link.url, prefix=link.prefix)
    alive = TurnBroker(other, name, heartbeat_timeout=0.5)
    got: queue.Queue = queue.Queue()
    worker = alive.worker(lambda **m: got.put(m), threads=1)
    worker.start()
    try:
        assert got.get(timeout=WAIT)["run_id"] == "run_2"  # put back by the broker's maintenance
    finally:
        worker.stop(timeout=10_000)
        other.close()


def test_sending_while_redis_is_away_is_503_and_queues_nothing():
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(NotReady) as away:
        TurnBroker(link, "goose-turns", heartbeat_timeout=30.0).send(**message("run_3"))
    assert away.value.headers["Retry-After"]
    link.close()


def test_a_message_passed_on_with_a_delay_still_arrives(link):
    broker = TurnBroker(link, f"q{free_port()}", heartbeat_timeout=30.0)
    broker.send(delay=0.2, **message("run_4"))
    assert broker.backlog() == 0  # waiting in the delay queue, not yet due
    got: queue.Queue = queue.Queue()
    worker = broker.worker(lambda **m: got.put(m), threads=1)
    worker.start()
    try:
        assert got.get(timeout=WAIT) == message("run_4")
    finally:
        worker.stop(timeout=10_000)
