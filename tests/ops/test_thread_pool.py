"""ElasticPool: threads made on demand up to a ceiling, ended when idle, no job lost in between."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import wait

import pytest

from goose_api.ops.thread_pool import ElasticPool

DEADLINE = 30.0  # how long a test waits for something that must happen (never a measured duration)


def until(condition, what: str) -> None:
    """Wait for ``condition()`` to hold (a pool thread ending is not an event we can wait on)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.005)


def gated_jobs(pool: ElasticPool, count: int) -> tuple[list, threading.Event, threading.Semaphore]:
    gate, started = threading.Event(), threading.Semaphore(0)

    def job(n: int) -> int:
        started.release()
        assert gate.wait(DEADLINE)
        return n

    return [pool.submit(job, n) for n in range(count)], gate, started


def test_no_thread_exists_before_work_arrives():
    pool = ElasticPool(100)
    assert pool.size == 0
    pool.shutdown()


def test_grows_to_one_thread_per_concurrent_job():
    pool = ElasticPool(100)
    futures, gate, started = gated_jobs(pool, 20)
    for _ in range(20):
        assert started.acquire(timeout=DEADLINE)  # all 20 run at once: none waits for another
    assert pool.size == 20
    gate.set()
    assert [f.result(DEADLINE) for f in futures] == list(range(20))
    pool.shutdown()


def test_never_more_threads_than_the_ceiling_and_queued_jobs_run_in_turn():
    pool = ElasticPool(3)
    futures, gate, started = gated_jobs(pool, 7)
    for _ in range(3):
        assert started.acquire(timeout=DEADLINE)
    assert pool.size == 3
    assert sum(f.running() for f in futures) == 3 and not any(f.done() for f in futures)
    gate.set()
    assert [f.result(DEADLINE) for f in futures] == list(range(7))
    assert pool.size == 3
    pool.shutdown()


def test_an_idle_thread_is_reused_not_a_new_one_made():
    pool = ElasticPool(10)
    names = [pool.submit(lambda: threading.current_thread().name).result(DEADLINE) for _ in range(20)]
    assert set(names) == {names[0]} and pool.size == 1
    pool.shutdown()


def test_idle_threads_end_and_the_pool_grows_again_after():
    pool = ElasticPool(50, idle_timeout=0.05)
    futures, gate, started = gated_jobs(pool, 30)
    for _ in range(30):
        assert started.acquire(timeout=DEADLINE)
    gate.set()
    wait(futures, DEADLINE)
    until(lambda: pool.size == 0, "idle threads to end")
    assert pool.submit(lambda: 42).result(DEADLINE) == 42
    pool.shutdown()


def test_no_job_is_lost_while_threads_time_out_as_jobs_arrive():
    """Idle threads end every millisecond while four threads submit: every job still runs, once."""
    pool = ElasticPool(8, idle_timeout=0.001)
    done: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> None:
        with lock:
            done.append(n)

    def submitter(base: int) -> list:
        futures = []
        for n in range(base, base + 500):
            futures.append(pool.submit(job, n))
            if n % 7 == 0:
                time.sleep(0.001)  # let threads go idle and time out between bursts
        return futures

    results: list = []
    threads = [threading.Thread(target=lambda b=b: results.extend(submitter(b))) for b in range(0, 2000, 500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    finished, pending = wait(results, DEADLINE)
    assert not pending
    assert sorted(done) == list(range(2000))
    assert pool.size <= 8
    pool.shutdown()


def test_no_job_is_lost_when_the_idle_thread_it_counted_on_times_out():
    """One job at a time, each arriving about when the idle thread gives up: the race of ending and taking a job."""
    pool = ElasticPool(4, idle_timeout=0.0005)
    rng = random.Random(18)
    for n in range(2000):
        assert pool.submit(lambda n=n: n).result(5) == n, f"job {n} was never run"
        time.sleep(rng.uniform(0.0002, 0.0008))
    pool.shutdown()


def test_a_job_queued_while_all_threads_were_busy_leaves_no_phantom_idle_thread():
    """The thread that takes a queued job is busy, not idle: counting it idle would strand a later job."""
    pool = ElasticPool(1, idle_timeout=0.01)
    futures, gate, started = gated_jobs(pool, 2)  # the second waits for the first's thread
    assert started.acquire(timeout=DEADLINE)
    gate.set()
    assert [f.result(DEADLINE) for f in futures] == [0, 1]
    until(lambda: pool.size == 0, "the idle thread to end")
    assert pool.submit(lambda: "ran").result(DEADLINE) == "ran"
    pool.shutdown()


def test_an_error_reaches_the_future_and_the_thread_goes_on():
    pool = ElasticPool(1)

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        pool.submit(fail).result(DEADLINE)
    assert pool.submit(lambda: "still serving").result(DEADLINE) == "still serving"
    pool.shutdown()


def test_a_shut_down_pool_refuses_work_and_its_threads_end():
    pool = ElasticPool(5)
    futures, gate, started = gated_jobs(pool, 5)
    for _ in range(5):
        assert started.acquire(timeout=DEADLINE)
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(lambda: None)
    gate.set()
    assert [f.result(DEADLINE) for f in futures] == list(range(5))  # work already given still finishes
    until(lambda: pool.size == 0, "threads to end after shutdown")


def test_cancel_futures_drops_queued_work():
    pool = ElasticPool(1)
    futures, gate, started = gated_jobs(pool, 3)
    assert started.acquire(timeout=DEADLINE)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert futures[0].result(DEADLINE) == 0
    assert futures[1].cancelled() and futures[2].cancelled()
