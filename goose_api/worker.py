"""``goose-api worker`` (``python -m goose_api.worker``): a process that runs queued turns.

With ``REDIS_URL`` set, web processes only answer HTTP; turns wait in a
Dramatiq queue on Redis and worker processes run them, ``worker_threads`` at
once each (a turn mostly waits on the model). A worker builds the same
services a web process has (the agent, the MCP extensions, the stores), runs
each message's turn on a Dramatiq thread and delivers webhooks. On SIGTERM
(a deploy, ``docker compose stop``) it takes no new message, lets each
turn's step in flight finish (``graceful_timeout``), ends those runs
``interrupted`` at a saved step and queues them again for another worker.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Sequence

from prometheus_client import start_http_server

from goose_api.errors import ConfigurationError
from goose_api.ops.logs import configure_logging
from goose_api.runs.queue_worker import QueueWorker
from goose_api.services import Services
from goose_api.settings import Settings

log = logging.getLogger("goose_api.worker")

USAGE, UNREACHABLE = 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="goose-api worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, metavar="N", help="turns run at once (default: worker_threads)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load(overrides={"worker_threads": args.threads} if args.threads else None)
    except ConfigurationError as exc:
        print(f"goose-api worker: {exc}", file=sys.stderr)
        return USAGE
    if not settings.redis_url:
        print("goose-api worker: REDIS_URL is not set. Workers take turns from a queue on Redis: set REDIS_URL "
              "(and DATABASE_URL) for the web and worker processes alike; without it, web processes run the "
              "turns themselves and no worker is needed", file=sys.stderr)
        return USAGE
    configure_logging(settings)
    return serve(settings)


def serve(settings: Settings) -> int:
    try:
        services = Services.build(settings, role="worker")
    except ConfigurationError as exc:  # Redis or the database out of reach, a schema behind: named, no traceback
        print(f"goose-api worker: {exc}", file=sys.stderr)
        return UNREACHABLE
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if settings.worker_metrics_port:  # workers answer no HTTP but this: their own provider, tool and run numbers
        start_http_server(settings.worker_metrics_port, addr=settings.host, registry=services.metrics.registry())
    worker = services.runs.queue_broker.worker(QueueWorker(services.runs).handle, settings.worker_threads)
    worker.start()
    log.info("worker ready queue=%s threads=%d", settings.worker_queue, settings.worker_threads)
    stop.wait()
    log.info("worker stopping: runs stop at their next saved step")
    services.begin_shutdown()
    worker.stop(timeout=int(settings.graceful_timeout * 1000))
    services.close()
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
