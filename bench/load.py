"""Load from another process: ``wrk`` when installed, else a small Python load generator.

Both keep ``connections`` keep-alive connections busy for ``seconds`` and
report requests per second and latency percentiles (p50, p99); the Python
generator is the fallback so that ``make bench`` works without wrk (its
numbers are lower: it shares the CPUs and a GIL; the ratio stays fair since
the baseline gets the same generator).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from bench.report import percentile

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def tool() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def run(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    """Requests per second, p50/p99 latency in seconds, and error count for one load run."""
    if tool() == "wrk":
        return _wrk(url, headers, seconds, connections)
    args = [sys.executable, "-m", "bench.load", url, "--seconds", str(seconds), "--connections", str(connections),
            "--headers", json.dumps(headers)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return json.loads(out.stdout)


def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    text = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: (.*)", text)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "p50_s": _seconds(latency["50"]), "p99_s": _seconds(latency["99"]),
            "errors": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else None}


def _seconds(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * UNITS[unit]


# --- the Python fallback, run in its own process --------------------------------------

def _generate(url: str, headers: dict[str, str], seconds: float, connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.request("GET", parts.path, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - started)
            errors[n] += response.status >= 400

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    flat = sorted(x for each in latencies for x in each)
    return {"rps": len(flat) / elapsed, "p50_s": percentile(flat, 50), "p99_s": percentile(flat, 99),
            "errors": sum(errors), "socket_errors": None}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Python load generator (the wrk fallback)")
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--headers", default="{}")
    args = parser.parse_args()
    print(json.dumps(_generate(args.url, json.loads(args.headers), args.seconds, args.connections)))
