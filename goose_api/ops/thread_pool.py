"""A thread pool that grows when work arrives and shrinks when it is idle.

A turn spends nearly all its time waiting on the model, and so do the requests
that follow it (a blocking answer, an event stream): a waiting thread costs
only its memory (~30–60 KiB, docs/operations.md). So the pools a worker
serves requests and runs turns with have a high ceiling, but no thread exists
before it is needed, and a thread idle for ``idle_timeout`` seconds ends:
memory goes back to what it was before the burst.

It is a ``concurrent.futures.Executor``, so gunicorn's gthread worker can use
it for its requests (``ops/gunicorn_worker.py``) and the run service for its
turns. Its threads are daemons: a request or turn still waiting when the
worker exits (after gunicorn's graceful timeout) does not keep it alive.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future
from typing import Any, Callable

IDLE_TIMEOUT = 30.0  # seconds a thread waits for more work before it ends

_STOP = None


class ElasticPool(Executor):
    """Up to ``max_threads`` daemon threads, made on demand; each ends after ``idle_timeout`` seconds idle.

    A job submitted while every thread is busy waits in order for the next free one.
    """

    def __init__(self, max_threads: int, *, idle_timeout: float = IDLE_TIMEOUT, name: str = "pool"):
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple, dict] | None] = queue.SimpleQueue()
        # Every queued job has a thread that will take it: an idle one (the job took its token), a new one,
        # or (all threads busy) the next to finish (``_owed``). An idle thread ends only if it can take a
        # token, i.e. no job counts on it.
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0
        self._owed = 0
        self._made = 0
        self._shutdown = False

    @property
    def size(self) -> int:
        """Threads alive now (busy or idle)."""
        with self._lock:
            return self._threads

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` on a pool thread; its outcome is the returned future's.

        Raises:
            RuntimeError: the pool was shut down.
        """
        future: Future = Future()
        job = (future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self.name} pool is shut down; no new work is accepted")
            if self._idle.acquire(blocking=False):  # an idle thread takes it
                self._jobs.put(job)
                return future
            if self._threads >= self.max_threads:  # all busy: the next to finish takes it
                self._owed += 1
                self._jobs.put(job)
                return future
            self._threads += 1
            self._made += 1
            number = self._made
        try:
            threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True).start()
        except BaseException:  # no thread (out of memory, a thread limit): the job is not queued
            with self._lock:
                self._threads -= 1
            raise
        self._jobs.put(job)
        return future

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self.idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle.acquire(blocking=False):  # unclaimed: no job counts on this thread
                        self._threads -= 1
                        return
                continue  # a submit counted on an idle thread: its job is in the queue
            if job is _STOP:
                with self._lock:
                    self._threads -= 1
                return
            future, fn, args, kwargs = job
            del job
            result, error = None, None
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # the caller sees it through the future
                    error = exc
            del fn, args, kwargs
            with self._lock:  # idle before the caller hears of the outcome: its next job finds this thread
                if self._owed:
                    self._owed -= 1  # a job queued while all were busy: this thread takes it next
                else:
                    self._idle.release()
            if error is not None:
                future.set_exception(error)
            elif future.running():
                future.set_result(result)
            del future, result, error  # hold nothing while waiting for the next job

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no new work; each thread ends once the jobs queued before it are done.

        ``wait`` is not honoured beyond that (threads are daemons, nothing joins them).
        """
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            threads = self._threads
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not _STOP:
                    job[0].cancel()
        for _ in range(threads):
            self._jobs.put(_STOP)
