"""Turns through the queue: 200 sessions at once, each turn 2 s on the model, run by 2 worker processes.

One web process (gunicorn, the project's settings) on PostgreSQL and Redis
hands every turn to the queue; two ``goose-api worker`` processes (the
Procfile's command, ``worker_threads`` default) run them. The same burst runs
against a web process on PostgreSQL alone that runs its turns itself (no
queue), the baseline, and the two take turns, burst for burst. PostgreSQL and
Redis are throwaway servers from Debian's packages, started as the test suite
does (``tests/support/services.py``), or ``DATABASE_URL`` / ``REDIS_URL``.

Each burst starts 200 new sessions at the same moment (a barrier, ``bench/burst.py``)
as blocking or async (202, then the events) turns; the wall time runs to the
last answer. Goal (issue 15): ≤ 1.5 × 2 s across 2 workers.

Run: ``python -m bench.workers [--count N] [--delay S] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from bench import report
from bench.burst import burst
from bench.provider_stub import ProviderStub
from bench.report import ROOT
from bench.servers import API_KEY, _drain, base_env, gunicorn, scratch, stop

GOAL_FACTOR = 1.5
MODES = ("blocking", "async")
HEADERS = {"x-api-key": API_KEY}


@contextmanager
def worker(env: dict[str, str], log_dir: Path, name: str) -> Iterator[subprocess.Popen]:
    """``python -m goose_api worker`` (the Procfile's line), its output drained into ``log_dir/name.log``."""
    log_path = log_dir / f"{name}.log"
    process = subprocess.Popen([sys.executable, "-m", "goose_api", "worker"], cwd=str(ROOT), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    drain = threading.Thread(target=_drain, args=(process.stdout, log_path), daemon=True)
    drain.start()
    deadline = time.monotonic() + 60
    while "worker ready" not in (log_path.read_text(errors="replace") if log_path.exists() else ""):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    try:
        yield process
    finally:
        stop(process)
        drain.join(10)


def measure(work: Path, database: str, redis: str, count: int, delay: float, rounds: int) -> dict:
    results: dict = {"queue": {}, "web": {}}
    with ProviderStub(delay=delay) as stub, ExitStack() as stack:
        queued_env = base_env(work / "queue", **stub.env(), DATABASE_URL=database, REDIS_URL=redis,
                              GOOSE_API_WORKER_QUEUE=f"bench-{os.getpid()}")
        servers = {"queue": stack.enter_context(gunicorn("app:app", queued_env, work / "queue")),
                   "web": stack.enter_context(gunicorn("app:app", base_env(work / "web", **stub.env(),
                                                                           DATABASE_URL=database), work / "web"))}
        for n in range(2):
            stack.enter_context(worker({**queued_env, "PYTHONPATH": str(ROOT)}, work / "queue", f"worker{n}"))
        for name, server in servers.items():
            for mode in MODES:  # first connections, the developer extension in each process
                burst(server.url, 4, mode, HEADERS)
        for _ in range(rounds):
            for mode in MODES:
                for name, server in servers.items():
                    outcome = burst(server.url, count, mode, HEADERS)
                    results[name].setdefault(mode, []).append(outcome)
                    print(f"workers: {name:5} {count} {mode:8} wall {outcome['wall_s']:6.2f} s, "
                          f"failed {outcome['failed']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="turns at once")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the provider takes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    sys.path.insert(0, str(ROOT))
    from tests.support.services import start_postgres, start_redis

    postgres, redis = start_postgres(), start_redis()
    try:
        database = postgres.fresh_database()
        with scratch("workers") as work:
            results = measure(work, database, redis.url, args.count, args.delay, args.rounds)
    finally:
        redis.stop()
        postgres.stop()
    load = os.getloadavg()
    rows = []
    goal = GOAL_FACTOR * args.delay
    for mode in MODES:
        queue, web = (report.stats(o["wall_s"] for o in results[name][mode]) for name in ("queue", "web"))
        failed = sum(o["failed"] for o in results["queue"][mode])
        rows.append(report.row(
            f"workers: {args.count} sessions at once, {mode}, provider {args.delay:g} s, 2 queue workers (wall)",
            f"≤ {goal:g} s", f"{web['median']:.2f} s (one web process running its turns)",
            f"{queue['median']:.2f} s" + (f" ({failed} failed)" if failed else ""), queue["median"] / args.delay,
            queue["median"] <= goal and not failed))
    report.write("workers", started=started, rows=rows, results=results,
                 parameters={"count": args.count, "provider_delay_s": args.delay, "rounds": args.rounds,
                             "modes": list(MODES), "workers": 2, "worker_threads": "default (128)",
                             "web": "gunicorn, 1 worker", "load_average": load,
                             "servers": "throwaway PostgreSQL (fsync off) and Redis (tests/support/services.py)"},
                 notes=["ratio: wall time / the provider's delay (1.0 is ideal)",
                        "the queue and the baseline take turns, burst for burst, on one shared PostgreSQL",
                        f"Load average at the end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load)}."])


if __name__ == "__main__":
    main()
