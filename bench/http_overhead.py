"""HTTP overhead: throughput and latency of read endpoints against a bare Flask app.

goose-api (default settings: key check, request ids, access log, schemas, the
developer extension configured) and ``bare_app.py`` run side by side under the
same ``gunicorn.conf.py`` (gthread, 1 worker, 16 threads). Load comes from
another process on loopback (``wrk`` when installed, see ``load.py``); runs
alternate between the two apps so that machine noise hits both alike.

A third server, goose-api with ``log_level: WARNING`` (no access log line per
request), shows what the one log write per request costs.

Endpoints: ``GET /extensions/list`` and ``GET /session/<id>`` (a 100-message
session; skipped while the endpoint does not exist).
Goal (issue 7): ≥ 0.8 of the bare app's throughput.

Run: ``python -m bench.http_overhead [--runs N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack

from bench import load, report
from bench.servers import base_env, gunicorn, scratch
from bench.session_files import write_session

GOAL = 0.8
SESSION_ID, SESSION_SIZE = "bench_http", 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="load runs per app and endpoint")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one load run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    started = time.monotonic()
    results, notes = {}, []
    with scratch("http") as work, ExitStack() as stack:
        servers = {}
        for name, app, extra in (("goose_api", "app:app", {}), ("bare_flask", "bench.bare_app:app", {}),
                                 ("goose_api_no_access_log", "app:app", {"GOOSE_API_LOG_LEVEL": "WARNING"})):
            env = base_env(work / name, **extra)
            write_session(work / name / "sessions", SESSION_ID, SESSION_SIZE, str(work / name / "work"))
            servers[name] = stack.enter_context(gunicorn(app, env, work))
        endpoints = ["/extensions/list"]
        if servers["goose_api"].get(f"/session/{SESSION_ID}").status_code == 200:
            endpoints.append(f"/session/{SESSION_ID}")
        else:
            notes.append("GET /session/<id> is not served by this goose-api version: skipped")
        for path in endpoints:
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for name, server in servers.items():  # warm up: code paths, the developer extension, caches
                load.run(server.url + path, server.headers, 1, args.connections)
            for _ in range(args.runs):
                for name, server in servers.items():
                    runs[name].append(load.run(server.url + path, server.headers, args.seconds, args.connections))
            results[path] = {name: {"rps": report.stats(r["rps"] for r in rs),
                                    "p50_s": report.stats(r["p50_s"] for r in rs),
                                    "p99_s": report.stats(r["p99_s"] for r in rs),
                                    "errors": sum(r["errors"] for r in rs), "runs": rs}
                             for name, rs in runs.items()}
            ours, bare = (results[path][n] for n in ("goose_api", "bare_flask"))
            ratio = statistics.median(o["rps"] / b["rps"] for o, b in zip(runs["goose_api"], runs["bare_flask"]))
            results[path]["ratio_per_run_pair_median"] = ratio
            results[path]["no_access_log_ratio"] = statistics.median(
                o["rps"] / b["rps"] for o, b in zip(runs["goose_api_no_access_log"], runs["bare_flask"]))
            print(f"http_overhead: GET {path}: goose-api {ours['rps']['median']:.0f} req/s, "
                  f"bare {bare['rps']['median']:.0f} req/s, ratio {ratio:.2f}", flush=True)
            if ours["errors"] or bare["errors"]:
                notes.append(f"GET {path}: error answers goose-api={ours['errors']} bare={bare['errors']}")
    rows = []
    for path, entry in list(results.items()):
        ours, bare = entry["goose_api"], entry["bare_flask"]
        ratio = entry["ratio_per_run_pair_median"]
        rows.append(report.row(
            f"HTTP GET {path.replace(SESSION_ID, '<id>')} throughput", f"≥ {GOAL} × bare",
            f"{bare['rps']['median']:.0f} req/s (p50 {report.ms(bare['p50_s']['median'])}, "
            f"p99 {report.ms(bare['p99_s']['median'])})",
            f"{ours['rps']['median']:.0f} req/s (p50 {report.ms(ours['p50_s']['median'])}, "
            f"p99 {report.ms(ours['p99_s']['median'])})", ratio, ratio >= GOAL))
        quiet = entry["goose_api_no_access_log"]
        rows.append(report.row(
            f"HTTP GET {path.replace(SESSION_ID, '<id>')}, access log off (log_level WARNING)", "context (no goal)",
            f"{bare['rps']['median']:.0f} req/s", f"{quiet['rps']['median']:.0f} req/s",
            entry["no_access_log_ratio"], None))
    report.write("http_overhead", started=started, rows=rows, results=results, notes=notes,
                 parameters={"load_tool": load.tool(), "connections": args.connections, "seconds": args.seconds,
                             "runs": args.runs, "workers": 1, "threads": 16, "session_messages": SESSION_SIZE,
                             "api_key": "x-api-key header on both (the bare app ignores it)"})


if __name__ == "__main__":
    main()
