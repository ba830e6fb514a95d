"""The two storage backends side by side: turn overhead by session length, and a burst of turns.

Two goose-api servers (gunicorn, the project's settings, one worker) run at the
same time against one zero-latency provider stub: one on files (the default),
one on PostgreSQL (a throwaway server from Debian's packages, started here as
the test suite does: ``tests/support/services.py``; or ``DATABASE_URL``).
The PostgreSQL server's sessions are the files server's, moved in with
``goose-api migrate --from-files``, so both start from the same histories.

- Turn overhead (as ``turn_overhead.py``): own time = client wall time − the
  stub's time, warm p50, at 10, 100 and 5,000 messages; each files turn is
  paired with a PostgreSQL turn, so machine noise hits both. Goals (issue 15):
  PostgreSQL p50 at 100 messages ≤ 10 ms, and at 5,000 ≤ 1.5 × that at 100
  (rows, not rewrites).
- Burst: 200 new sessions at once, blocking, each provider call 1 s
  (``bench/burst.py``); wall time to the last answer, files beside PostgreSQL.
- Saving one message (the stores alone, in this process): the file backend
  rewrites the session's file (and fsyncs it), PostgreSQL inserts a row; p50
  at 10, 100 and 5,000 messages.

Run: ``python -m bench.backends [--rounds N] [--sessions N] [--burst N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from bench import report
from bench.burst import burst
from bench.provider_stub import ProviderStub
from bench.report import ROOT
from bench.servers import API_KEY, base_env, cpu_seconds, gunicorn, scratch
from bench.session_files import history, write_session
from bench.turn_overhead import own_times

SIZES = (10, 100, 5000)
BACKENDS = ("files", "postgresql")
GOAL_100_MS = 10.0
GROWTH_GOAL = 1.5


def seed(work: Path, per_size: int) -> None:
    base_env(work / "files")  # makes its dirs
    for size in SIZES:
        for k in range(per_size):
            write_session(work / "files" / "sessions", f"bench_{size}_{k}", size, str(work / "files" / "work"))


def move_to_database(work: Path, url: str) -> None:
    """``goose-api migrate --from-files``: the schema, then the files server's sessions."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "HOME": str(work / "home")}
    subprocess.run([sys.executable, "-m", "goose_api", "migrate", "--from-files", str(work / "files" / "data"),
                    str(work / "files" / "sessions")], env=env, check=True, capture_output=True, cwd=work)


def overhead(servers: dict, stub: ProviderStub, rounds: int, per_size: int) -> dict:
    http = {}
    for name, server in servers.items():
        http[name] = requests.Session()
        http[name].headers["x-api-key"] = API_KEY
        own_times(http[name], server.url, stub, f"bench_{SIZES[0]}_0", 2)  # warm up: extensions, pools, caches
    results: dict = {}
    for size in SIZES:
        ids = [f"bench_{size}_{k}" for k in range(per_size)]
        samples: dict[str, list[float]] = {name: [] for name in servers}
        cpu = {name: cpu_seconds(server.pids()) for name, server in servers.items()}
        for name in servers:  # the cold turn of each session: parsed (files) or read (rows)
            results.setdefault(size, {})[f"{name}_cold_s"] = report.stats(
                own_times(http[name], servers[name].url, stub, sid, 1)[0] for sid in ids)
        for _ in range(rounds):
            for sid in ids:
                for name in servers:
                    samples[name] += own_times(http[name], servers[name].url, stub, sid, 1)
        for name, server in servers.items():
            results[size][f"{name}_warm_s"] = report.stats(samples[name])
            results[size][f"{name}_warm_p99_s"] = report.percentile(sorted(samples[name]), 99)
            results[size][f"{name}_cpu_per_turn_s"] = (cpu_seconds(server.pids()) - cpu[name]) / len(samples[name])
        print(f"backends: {size} messages: " + ", ".join(
            f"{name} p50 {results[size][f'{name}_warm_s']['median'] * 1000:.2f} ms" for name in servers), flush=True)
    return results


def save_costs(work: Path, url: str, saves: int = 150) -> dict:
    """Seconds to save one message into a session of each size, per backend (the stores alone)."""
    from goose_api.postgres.db import Database
    from goose_api.postgres.sessions import PgSessionLocks, PgSessionStore
    from goose_api.sessions.store import SessionStore
    from goose_api.storage.data_dir import DataDir

    db = Database(url).open()
    stores = {"files": SessionStore(DataDir.at(work / "save" / "data", work / "save" / "sessions")),
              "postgresql": PgSessionStore(db, PgSessionLocks(db, 30.0))}
    results: dict = {}
    try:
        for size in SIZES:
            sessions = {}
            for name, store in stores.items():
                sessions[name] = store.create(f"save_{size}", "/work")
                store.replace_messages(sessions[name], history(size))
            samples: dict[str, list[float]] = {name: [] for name in stores}
            for extra in history(saves, created=1_800_000_000):  # save for save, so disk noise hits both
                for name, store in stores.items():
                    started = time.perf_counter()
                    store.append(sessions[name], extra)
                    samples[name].append(time.perf_counter() - started)
            results[size] = {name: report.stats(values) for name, values in samples.items()}
            print(f"backends: save one message at {size}: " + ", ".join(
                f"{name} p50 {results[size][name]['median'] * 1000:.2f} ms" for name in stores), flush=True)
    finally:
        db.close()
    return results


def measure(work: Path, url: str, rounds: int, per_size: int, burst_size: int) -> dict:
    seed(work, per_size)
    move_to_database(work, url)
    with ProviderStub() as stub, ExitStack() as stack:
        servers = {}
        for name in BACKENDS:
            extra = {"GOOSE_API_CONTEXT_LIMIT": "100000000"} | ({"DATABASE_URL": url} if name == "postgresql" else {})
            env = base_env(work / name, **stub.env(), **extra)
            servers[name] = stack.enter_context(gunicorn("app:app", env, work / name))
        results = {"overhead": overhead(servers, stub, rounds, per_size), "burst": {}}
        stub.delay = 1.0  # from here every provider call takes a second (the model's time in a burst)
        for name, server in servers.items():
            burst(server.url, 2, "blocking", {"x-api-key": API_KEY})  # new sessions' first connections
            results["burst"][name] = burst(server.url, burst_size, "blocking", {"x-api-key": API_KEY})
            print(f"backends: burst of {burst_size} on {name}: {results['burst'][name]}", flush=True)
    results["save"] = save_costs(work, url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="warm turns per session")
    parser.add_argument("--sessions", type=int, default=4, help="sessions per size")
    parser.add_argument("--burst", type=int, default=200, help="turns at once in the burst")
    args = parser.parse_args()
    started = time.monotonic()
    sys.path.insert(0, str(ROOT))
    from tests.support.services import start_postgres

    server = start_postgres(durable=True)  # commits flushed to disk, as the files backend fsyncs
    try:
        url = server.fresh_database(migrated=False)
        with scratch("backends") as work:
            results = measure(work, url, args.rounds, args.sessions, args.burst)
    finally:
        server.stop()
    load = os.getloadavg()
    rows = []
    for size in SIZES:
        files, pg = (results["overhead"][size][f"{b}_warm_s"]["median"] for b in BACKENDS)
        goal = f"≤ {GOAL_100_MS:g} ms" if size == 100 else "report (no goal)"
        rows.append(report.row(f"backends: turn overhead, {size} messages, PostgreSQL (warm p50)", goal,
                               f"{report.ms(files)} (files)", report.ms(pg), pg / files,
                               pg * 1000 <= GOAL_100_MS if size == 100 else None))
    p100, p5000 = (results["overhead"][size]["postgresql_warm_s"]["median"] for size in (100, 5000))
    rows.append(report.row("backends: PostgreSQL turn overhead growth 100 → 5,000 messages", f"≤ {GROWTH_GOAL:g}×",
                           report.ms(p100), report.ms(p5000), p5000 / p100, p5000 / p100 <= GROWTH_GOAL))
    for size in SIZES:
        files, pg = (results["save"][size][b]["median"] for b in BACKENDS)
        rows.append(report.row(f"backends: saving one message, {size} messages (p50)", "flat on PostgreSQL (a row)",
                               f"{report.ms(files)} (files: the whole file rewritten)", report.ms(pg), pg / files,
                               None))
    save_growth = results["save"][5000]["postgresql"]["median"] / results["save"][100]["postgresql"]["median"]
    rows.append(report.row("backends: PostgreSQL save growth 100 → 5,000 messages", f"≤ {GROWTH_GOAL:g}×",
                           report.ms(results["save"][100]["postgresql"]["median"]),
                           report.ms(results["save"][5000]["postgresql"]["median"]), save_growth,
                           save_growth <= GROWTH_GOAL))
    files_burst, pg_burst = (results["burst"][b] for b in BACKENDS)
    rows.append(report.row(f"backends: {args.burst} turns at once, provider 1 s, one worker (wall)",
                           "report (issue 15's goal is across 2 queue workers)",
                           f"{files_burst['wall_s']:.2f} s (files, {files_burst['failed']} failed)",
                           f"{pg_burst['wall_s']:.2f} s ({pg_burst['failed']} failed)",
                           pg_burst["wall_s"] / files_burst["wall_s"], None))
    report.write("backends", started=started,
                 parameters={"sizes": SIZES, "sessions_per_size": args.sessions, "warm_rounds": args.rounds,
                             "burst": args.burst, "workers": 1, "provider": "provider_stub (zero latency; burst 1 s)",
                             "postgresql": "throwaway server (tests/support/services.py), fsync and "
                                           "synchronous_commit on (the defaults)",
                             "load_average": load},
                 results={"overhead": {str(k): v for k, v in results["overhead"].items()}, "burst": results["burst"],
                          "save": {str(k): v for k, v in results["save"].items()}},
                 rows=rows,
                 notes=["Both servers ran at once, turn for turn; read the ratios (the machine is shared).",
                        f"Load average at the end (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load)}.",
                        "The PostgreSQL server flushes every commit (fsync, synchronous_commit on), as the "
                        "files backend fsyncs every save: both pay one disk flush per saved message."])


if __name__ == "__main__":
    main()
