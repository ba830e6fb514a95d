"""Concurrency: 200 sessions at once whose provider takes 2 s; wall time, peak and per-session memory.

goose-api runs under gunicorn (1 worker) against the provider stub with a 2 s
delay. 200 client threads start a session each at the same moment (a barrier)
with a blocking ``POST /session/start``; the wall time is from the barrier to
the last answer. A blocking request holds a gunicorn thread for its whole turn,
so the worker gets 200 threads (``GOOSE_API_THREADS=200``; background runs, when
they exist, need ``GOOSE_API_RUN_THREADS=200`` too). The same load against
``bare_app.py`` (which only forwards each prompt) is the baseline for the
server's share; the ideal is the provider's 2 s.

Memory: PSS of gunicorn's master and worker, sampled every 100 ms during the
run (peak), and idle before and after (the difference over 200 is the memory
an idle session keeps; sessions are cached per process up to 128).
Goal (issue 7): wall ≤ 1.5 × 2 s.

Run: ``python -m bench.concurrency [--sessions N] [--delay S] [--runs N]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from urllib.parse import urlsplit

from bench import report
from bench.provider_stub import ProviderStub
from bench.servers import MemorySampler, base_env, gunicorn, memory_mib, scratch

GOAL = 1.5


def burst(url: str, sessions: int, headers: dict[str, str]) -> dict:
    """Start ``sessions`` sessions at once; seconds from the barrier to the last answer."""
    parts = urlsplit(url)
    barrier = threading.Barrier(sessions + 1)
    statuses: list[int] = []
    finished: list[float] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        conn.connect()
        body = json.dumps({"prompt": f"Session {n}: say hello."})
        barrier.wait()
        try:
            conn.request("POST", "/session/start", body=body,
                         headers={**headers, "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = 0
        with lock:
            statuses.append(status)
            finished.append(time.perf_counter())
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(sessions)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(300)
    ok = sum(1 for s in statuses if s == 200)
    return {"wall_s": max(finished) - started, "ok": ok, "failed": sessions - ok}


def measure(work, app: str, sessions: int, delay: float, runs: int) -> dict:
    with ProviderStub(delay=delay) as stub:
        env = base_env(work, **stub.env(), GOOSE_API_THREADS=str(sessions), GOOSE_API_RUN_THREADS=str(sessions))
        with gunicorn(app, env, work) as server:
            burst(server.url, 2, server.headers)  # warm up: imports, the developer extension, connections
            idle_before = memory_mib(server.pids())
            walls, outcomes = [], []
            with MemorySampler(server.pids) as sampler:
                for _ in range(runs):
                    outcome = burst(server.url, sessions, server.headers)
                    outcomes.append(outcome)
                    walls.append(outcome["wall_s"])
            time.sleep(1.0)
            idle_after = memory_mib(server.pids())
            peak = memory_mib(server.pids())["peak_rss_mib"]
    return {"wall_s": report.stats(walls), "runs": outcomes, "provider_max_in_flight": stub.max_in_flight,
            "idle_before": idle_before, "idle_after": idle_after, "peak_pss_mib": sampler.peak_pss_mib,
            "peak_rss_mib": peak,
            "idle_session_kib": round((idle_after["pss_mib"] - idle_before["pss_mib"]) * 1024 / (sessions * runs), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the provider takes")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    results = {}
    with scratch("concurrency") as work:
        for name, app in (("bare_flask", "bench.bare_app:app"), ("goose_api", "app:app")):
            results[name] = measure(work / name, app, args.sessions, args.delay, args.runs)
            r = results[name]
            print(f"concurrency: {name}: wall p50 {r['wall_s']['median']:.2f} s for {args.sessions} sessions, "
                  f"failed {sum(o['failed'] for o in r['runs'])}, peak PSS {r['peak_pss_mib']:.0f} MiB, "
                  f"provider in flight max {r['provider_max_in_flight']}", flush=True)
    ours, bare = results["goose_api"], results["bare_flask"]
    wall = ours["wall_s"]["median"]
    failed = sum(o["failed"] for o in ours["runs"])
    rows = [
        report.row(f"concurrency: {args.sessions} sessions, provider {args.delay:g} s (wall)",
                   f"≤ {GOAL}× {args.delay:g} s", f"{args.delay:g} s ideal; bare proxy {bare['wall_s']['median']:.2f} s",
                   f"{wall:.2f} s" + (f" ({failed} failed)" if failed else ""), wall / args.delay,
                   wall <= GOAL * args.delay and not failed),
        report.row("concurrency: peak memory during the burst (PSS)", "report (no goal)",
                   f"{bare['peak_pss_mib']:.0f} MiB (bare proxy)", f"{ours['peak_pss_mib']:.0f} MiB",
                   ours["peak_pss_mib"] / bare["peak_pss_mib"], None),
        report.row("concurrency: memory per idle session", "report (no goal)", "n/a",
                   f"{ours['idle_session_kib']:.1f} KiB", None, None),
    ]
    report.write("concurrency", started=started, rows=rows, results=results,
                 parameters={"sessions": args.sessions, "provider_delay_s": args.delay, "runs": args.runs,
                             "workers": 1, "threads": args.sessions, "mode": "blocking POST /session/start"},
                 notes=["blocking requests: one gunicorn thread per session (GOOSE_API_THREADS=200)"])


if __name__ == "__main__":
    main()
