"""Run every benchmark, one process each, and refresh bench/README.md (``make bench``).

    python bench/run_all.py [NAME ...]      # default: all, in the order below

Each benchmark writes bench/results/<name>.json; one that fails does not stop
the others (the exit status says whether all ran).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("turn_overhead", "tool_overhead", "http_overhead", "concurrency", "streams", "startup", "peers")


def main(names: list[str]) -> int:
    failed = []
    for name in names or BENCHMARKS:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        print(f"== {name}: {'ok' if code == 0 else f'failed ({code})'} in {time.monotonic() - started:.0f} s",
              flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
