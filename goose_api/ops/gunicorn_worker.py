"""gunicorn's gthread worker, with a request pool that grows on demand and shrinks when idle.

gthread serves each request on a thread of a ``ThreadPoolExecutor`` of
``threads`` threads, which never ends a thread it made: after a burst of
long requests (blocking turns, event streams) the worker keeps every thread,
and its memory, for good. This worker gives gthread an ``ElasticPool`` of the
same ceiling instead (through gthread's own ``get_thread_pool`` hook): a
thread is made when a request finds none idle and ends after a while idle.
Everything else is gthread's.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker

from goose_api.ops.thread_pool import ElasticPool


class ElasticThreadWorker(ThreadWorker):
    def get_thread_pool(self) -> ElasticPool:
        return ElasticPool(self.cfg.threads, name="request")
