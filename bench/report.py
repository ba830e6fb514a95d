"""Results of a benchmark: machine and versions, statistics of several runs, the JSON file and README row.

Every figure a benchmark reports is a ratio against a baseline measured in the
same run (the machines are noisy); the absolute numbers are kept for context.
``write`` saves ``bench/results/<name>.json`` and regenerates the results table
in ``bench/README.md`` from every JSON file there.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = ("http_overhead", "turn_overhead", "tool_overhead", "concurrency", "streams", "startup", "peers", "backends")
PACKAGES = ("flask", "werkzeug", "gunicorn", "requests", "mcp", "llama_cpp_python", "marshmallow", "flask-smorest")


def stats(values: Iterable[float]) -> dict[str, float]:
    """Median and spread (min, max, p10, p90, stdev) of several runs."""
    data = sorted(values)
    if not data:
        return {"n": 0}
    return {"n": len(data), "median": statistics.median(data), "min": data[0], "max": data[-1],
            "p10": percentile(data, 10), "p90": percentile(data, 90),
            "stdev": statistics.stdev(data) if len(data) > 1 else 0.0}


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear-interpolated percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(),
            "memory_gib": round(mem_kb / 2**20, 1), "python": sys.version.split()[0]}


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["goose-api commit"] = _git("rev-parse", "--short", "HEAD")
    found["goose-api dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return found


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def row(benchmark: str, goal: str, baseline: str, ours: str, ratio: float | None, met: bool | None) -> dict[str, Any]:
    """One line of the README table; ``met`` None means there is no goal to meet."""
    return {"benchmark": benchmark, "goal": goal, "baseline": baseline, "ours": ours,
            "ratio": None if ratio is None else round(ratio, 3), "met": met}


def write(name: str, *, parameters: dict[str, Any], results: dict[str, Any], rows: list[dict[str, Any]],
          notes: list[str] | None = None, started: float | None = None) -> Path:
    """Save ``bench/results/<name>.json`` and refresh the README table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "duration_s": round(time.monotonic() - started, 1) if started else None,
                "machine": machine(), "versions": versions(), "parameters": parameters,
                "rows": rows, "results": results, "notes": notes or []}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    refresh_readme()
    for r in rows:
        print(f"{r['benchmark']}: ours {r['ours']} | baseline {r['baseline']} | ratio {r['ratio']} | "
              f"goal {r['goal']} | met {r['met']}", flush=True)
    return path


def refresh_readme() -> None:
    """Rebuild the results table in bench/README.md from every results file."""
    lines = ["| benchmark | goal | baseline | ours | ratio | met? |", "| --- | --- | --- | --- | --- | --- |"]
    files = sorted(RESULTS.glob("*.json"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem))
    for path in files:
        if path.stem == "before_after":  # run_all.py --before keeps its own table
            continue
        for r in json.loads(path.read_text())["rows"]:
            met = {True: "yes", False: "**no**", None: "n/a"}[r["met"]]
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            lines.append(f"| {r['benchmark']} | {r['goal']} | {r['baseline']} | {r['ours']} | {ratio} | {met} |")
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{TABLE_START}\n{TABLE_END}\n"
    head, _, rest = text.partition(TABLE_START)
    _, _, tail = rest.partition(TABLE_END)
    README.write_text(f"{head}{TABLE_START}\n" + "\n".join(lines) + f"\n{TABLE_END}{tail}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
