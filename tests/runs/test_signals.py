"""Wake-ups across processes through a real Redis: an append in one process wakes readers in another."""

from __future__ import annotations

import threading

import pytest

from goose_api.runs.redis_link import RedisLink
from goose_api.runs.signals import RedisChangeCounter, RedisLogSignal
from tests.support.services import free_port

WAIT = 30.0  # a bound for a wake-up that must come; a broken bridge fails the test, a working one ends at once


@pytest.fixture
def links(redis_url):
    prefix = f"test-{free_port()}"
    pair = (RedisLink(redis_url, prefix=prefix), RedisLink(redis_url, prefix=prefix))
    yield pair
    for link in pair:
        link.close()


def test_an_append_in_one_process_wakes_the_readers_of_that_log_in_another(links):
    writer, reader = RedisLogSignal(links[0]), RedisLogSignal(links[1])
    try:
        mine, other = reader.listen("s1/run_a"), reader.listen("s1/run_b")
        assert reader.connected.wait(WAIT)
        woken = threading.Event()
        waiter = threading.Thread(target=lambda: (mine.wait(0, WAIT), woken.set()))
        waiter.start()
        writer.notify("s1/run_a")
        waiter.join(WAIT + 5)
        assert woken.is_set() and mine.generation == 1
        assert other.generation == 0  # only the readers of that run
        reader.leave(mine)
        reader.leave(other)
    finally:
        writer.close()
        reader.close()


def test_the_steering_counter_moves_for_every_process(links):
    one, two = RedisChangeCounter(links[0], "steering"), RedisChangeCounter(links[1], "steering")
    before = two.value()
    one.bump()
    assert two.value() != before


def test_a_counter_read_while_redis_is_away_reports_no_change():
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0")
    counter = RedisChangeCounter(link, "steering")
    assert counter.value() == counter.value() == 0
    link.close()
