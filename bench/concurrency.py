"""Concurrency: 50 and 200 turns at once, each waiting 1 s on the model, with no settings; before and after.

Three servers run side by side under gunicorn (1 worker), against one provider
stub that takes ``--delay`` seconds per call: goose-api as it is, goose-api as
of ``--before`` (a git ref; default: the commit before issue 18) with its
defaults (16 request threads, 8 run threads), and that older goose-api sized by
hand (``GOOSE_API_THREADS=210 GOOSE_API_RUN_THREADS=210``, the issue's
reference). Each burst starts 50 or 200 sessions at the same moment (a
barrier) as blocking, async (202, then the events) or streamed turns; the wall
time runs to the last turn's end. The three servers take turns, burst for
burst, so machine noise hits all of them.

Memory is PSS of gunicorn's master and worker: idle after a warm-up, the
peak during each burst (sampled every 100 ms), right after the bursts, and
again once idle threads have ended (``IDLE_TIMEOUT`` later). Per concurrent
turn: (peak − idle) / turns, by kind of client.

Goals (issue 18): with no settings, 50 turns in ≤ 1.5 s and 200 in ≤ 4 s, every
kind of client; idle memory ≤ 1.1 × before.

Run: ``python -m bench.concurrency [--counts 50 200] [--delay S] [--rounds N] [--before REF|none]``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

from bench import report
from bench.burst import MODES, burst
from bench.provider_stub import ProviderStub
from bench.report import ROOT
from bench.servers import MemorySampler, base_env, export_tree, gunicorn, memory_mib, scratch
from goose_api.ops.thread_pool import IDLE_TIMEOUT

BEFORE = "d7d321c"  # main before issue 18: 16 request threads, 8 run threads
GOALS_S = {50: 1.5, 200: 4.0}
IDLE_MEMORY_GOAL = 1.10
SIZED = {"GOOSE_API_THREADS": "210", "GOOSE_API_RUN_THREADS": "210"}


def configurations(work: Path, before: str | None) -> dict[str, tuple[Path, dict[str, str]]]:
    configs = {"ours": (ROOT, {})}
    if before:
        tree = export_tree(before, work / "before-tree")
        configs.update(before=(tree, {}), before_sized=(tree, SIZED))
    return configs


def measure(work: Path, counts: list[int], delay: float, rounds: int, before: str | None) -> dict:
    configs = configurations(work, before)
    results: dict = {name: {"bursts": {}} for name in configs}
    with ProviderStub(delay=delay) as stub, ExitStack() as stack:
        servers = {}
        for name, (root, extra) in configs.items():
            env = base_env(work / name, **stub.env(), **extra)
            servers[name] = stack.enter_context(gunicorn("app:app", env, work, root=root))
        for name, server in servers.items():
            for mode in MODES:  # imports, the developer extension, first connections
                burst(server.url, 2, mode, server.headers)
            time.sleep(0.5)
            results[name]["idle"] = memory_mib(server.pids())
        for _ in range(rounds):
            for count in counts:
                for mode in MODES:
                    for name, server in servers.items():
                        with MemorySampler(server.pids) as sampler:
                            outcome = burst(server.url, count, mode, server.headers)
                        outcome["peak_pss_mib"] = sampler.peak_pss_mib
                        results[name]["bursts"].setdefault(f"{count}/{mode}", []).append(outcome)
                        print(f"concurrency: {name:12} {count:4} {mode:8} wall {outcome['wall_s']:6.2f} s, "
                              f"failed {outcome['failed']}, peak PSS {outcome['peak_pss_mib']:.0f} MiB", flush=True)
        for name, server in servers.items():
            results[name]["after_burst"] = memory_mib(server.pids())
        time.sleep(IDLE_TIMEOUT + 5)
        for name, server in servers.items():
            results[name]["after_idle"] = memory_mib(server.pids())
    for entry in results.values():
        for key, outcomes in entry["bursts"].items():
            entry[key] = {"wall_s": report.stats(o["wall_s"] for o in outcomes),
                          "failed": sum(o["failed"] for o in outcomes),
                          "peak_pss_mib": max(o["peak_pss_mib"] for o in outcomes)}
    return results


def burst_rows(results: dict, counts: list[int], delay: float) -> list[dict]:
    ours, before, sized = results["ours"], results.get("before"), results.get("before_sized")
    rows = []
    for count in counts:
        for mode in MODES:
            key = f"{count}/{mode}"
            wall, failed = ours[key]["wall_s"]["median"], ours[key]["failed"]
            goal = GOALS_S.get(count)
            baseline = f"{delay:g} s ideal"
            if before:
                baseline = (f"before: {before[key]['wall_s']['median']:.2f} s (defaults), "
                            f"{sized[key]['wall_s']['median']:.2f} s (210 threads)")
            rows.append(report.row(
                f"concurrency: {count} turns at once, {mode}, provider {delay:g} s (wall, no settings)",
                f"≤ {goal:g} s" if goal else "report (no goal)", baseline,
                f"{wall:.2f} s" + (f" ({failed} failed)" if failed else ""),
                wall / before[key]["wall_s"]["median"] if before else wall / delay,
                (wall <= goal and not failed) if goal else None))
    return rows


def memory_rows(results: dict, counts: list[int]) -> list[dict]:
    ours, before = results["ours"], results.get("before")
    idle = ours["idle"]["pss_mib"]
    rows = [report.row("concurrency: idle memory (PSS, master + worker, after a warm-up)",
                       f"≤ {IDLE_MEMORY_GOAL:g}× before", f"{before['idle']['pss_mib']:.1f} MiB (before)"
                       if before else "n/a", f"{idle:.1f} MiB",
                       idle / before["idle"]["pss_mib"] if before else None,
                       idle <= IDLE_MEMORY_GOAL * before["idle"]["pss_mib"] if before else None)]
    top = max(counts)
    per_turn = {mode: (ours[f"{top}/{mode}"]["peak_pss_mib"] - idle) * 1024 / top for mode in MODES}
    rows.append(report.row(f"concurrency: memory per concurrent turn ({top} at once; peak − idle)", "report (no goal)",
                           "n/a", ", ".join(f"{mode} {kib:.0f} KiB" for mode, kib in per_turn.items()), None, None))
    rows.append(report.row("concurrency: memory after the bursts / once idle threads ended", "report (no goal)",
                           f"{before['after_burst']['pss_mib']:.0f} / {before['after_idle']['pss_mib']:.0f} MiB "
                           "(before)" if before else "n/a",
                           f"{ours['after_burst']['pss_mib']:.0f} / {ours['after_idle']['pss_mib']:.0f} MiB",
                           ours["after_idle"]["pss_mib"] / before["after_idle"]["pss_mib"] if before else None,
                           None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the provider takes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="git ref to compare with, or 'none'")
    args = parser.parse_args()
    before = None if args.before == "none" else args.before
    started = time.monotonic()
    with scratch("concurrency") as work:
        results = measure(work, args.counts, args.delay, args.rounds, before)
    rows = burst_rows(results, args.counts, args.delay) + memory_rows(results, args.counts)
    report.write("concurrency", started=started, rows=rows, results=results,
                 parameters={"counts": args.counts, "provider_delay_s": args.delay, "rounds": args.rounds,
                             "before": before, "workers": 1, "modes": list(MODES),
                             "ours": "no settings", "before_sized": SIZED},
                 notes=["one worker; async = 202, then GET /session/<id>/events to the done event",
                        "servers take turns burst for burst; memory is PSS of master + worker"])


if __name__ == "__main__":
    main()
