"""Run every benchmark, one process each, and refresh bench/README.md (``make bench``).

    python bench/run_all.py [NAME ...]                          # default: all, in the order below
    python bench/run_all.py --before REF [--rounds N] [NAME ...]  # the same on REF too, alternating

Each benchmark writes bench/results/<name>.json; one that fails does not stop
the others (the exit status says whether all ran).

With ``--before REF`` the project as of REF is checked out in a temporary git
worktree and each benchmark runs on both trees in the same run, alternating
(ours, before, then before, ours, ... for ``--rounds`` rounds), so that the
machine's noise hits both. The headline number of every row (the "ours" column
of each tree's own run) is compared: bench/results/before_after.json keeps the
medians and after/before ratios, and the table between the ``before-after``
marks of bench/README.md shows them. REF reuses this virtualenv when every
version it pins is the one installed here, else gets its own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("turn_overhead", "tool_overhead", "http_overhead", "concurrency", "streams", "startup", "peers",
              "backends")
COMPARISON = Path("bench") / "results" / "before_after.json"
README = Path("bench") / "README.md"
MARK_START, MARK_END = "<!-- before-after:start -->", "<!-- before-after:end -->"
NUMBER = re.compile(r"^\s*([0-9][0-9.,]*)\s*([^\s(]*)")


def run_one(name: str, root: Path, python: str) -> list[dict] | None:
    """Run one benchmark in ``root``; its result rows, or None when it failed."""
    started = time.monotonic()
    print(f"== {name} ({root})", flush=True)
    code = subprocess.call([python, "-m", f"bench.{name}"], cwd=root)
    print(f"== {name}: {'ok' if code == 0 else f'failed ({code})'} in {time.monotonic() - started:.0f} s",
          flush=True)
    if code:
        return None
    return json.loads((root / "bench" / "results" / f"{name}.json").read_text())["rows"]


def headline(cell: str) -> tuple[float, str] | None:
    """The leading number of a table cell and its unit: '12.01 ms' -> (12.01, 'ms')."""
    match = NUMBER.match(cell or "")
    return (float(match.group(1).replace(",", "")), match.group(2)) if match else None


def compare(runs: dict[str, list[list[dict]]]) -> list[dict]:
    """Per row: the medians of both trees' headline numbers and the after/before ratio."""
    numbers: dict[str, dict[str, list[float]]] = {}
    units: dict[str, str] = {}
    for side, tree_runs in runs.items():
        for rows in tree_runs:
            for row in rows:
                value = headline(row["ours"])
                if value is not None:
                    numbers.setdefault(row["benchmark"], {"before": [], "after": []})[side].append(value[0])
                    units[row["benchmark"]] = value[1]
    out = []
    for name, sides in numbers.items():
        before = statistics.median(sides["before"]) if sides["before"] else None
        after = statistics.median(sides["after"]) if sides["after"] else None
        ratio = after / before if before and after is not None else None
        out.append({"benchmark": name, "unit": units[name], "before": before, "after": after,
                    "after_over_before": None if ratio is None else round(ratio, 3),
                    "before_runs": sides["before"], "after_runs": sides["after"]})
    return out


def pinned(tree: Path) -> dict[str, str]:
    found = {}
    for filename in ("requirements.txt", "requirements-dev.txt"):
        path = tree / filename
        for line in path.read_text().splitlines() if path.exists() else []:
            line = line.split("#", 1)[0].strip()
            if "==" in line and not line.startswith("-"):
                name, version = (part.strip() for part in line.split("==", 1))
                found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def python_for(tree: Path, scratch: Path) -> str:
    """This interpreter when it has every version ``tree`` pins, else a new virtualenv made from its pins."""
    from importlib import metadata
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in metadata.distributions()}
    wanted = pinned(tree)
    if all(installed.get(name) == version for name, version in wanted.items()):
        return sys.executable
    venv = scratch / "venv"
    print(f"== {tree.name}: its pins differ from this virtualenv; installing them into {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    dev = "requirements-dev.txt" if (tree / "requirements-dev.txt").exists() else "requirements.txt"
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", dev], cwd=tree, check=True)
    return str(venv / "bin" / "python")


@contextmanager
def worktree(ref: str, root: Path = ROOT) -> Iterator[Path]:
    """``ref`` checked out in a temporary git worktree, with this checkout's model and npm servers linked in."""
    scratch = Path(tempfile.mkdtemp(prefix="goose-bench-before-"))
    tree = scratch / "tree"
    subprocess.run(["git", "worktree", "add", "--quiet", "--detach", str(tree), ref], cwd=root, check=True)
    try:
        if (root / "models").is_dir():
            (tree / "models").symlink_to(root / "models")
        node_modules = next((p for p in (root / "tests" / "node_modules", root / "node_modules") if p.is_dir()), None)
        for where in (tree, tree / "tests"):
            if node_modules and (where / "package.json").exists() and not (where / "node_modules").exists():
                (where / "node_modules").symlink_to(node_modules)
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def before_after(ref: str, names: list[str], rounds: int, root: Path = ROOT) -> int:
    """Each benchmark on ``root`` (after) and on ``ref`` (before), alternating; the comparison recorded."""
    failed: list[str] = []
    document = {"before": ref, "before_commit": git("rev-parse", "--short", ref, cwd=root),
                "after_commit": git("rev-parse", "--short", "HEAD", cwd=root), "rounds": rounds,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_at_start": load(), "benchmarks": {}}
    with worktree(ref, root) as tree:
        python = python_for(tree, tree.parent)
        sides = {"after": (root, sys.executable), "before": (tree, python)}
        for name in names:
            runs: dict[str, list[list[dict]]] = {"before": [], "after": []}
            for round_ in range(rounds):
                for side in ("after", "before") if round_ % 2 == 0 else ("before", "after"):
                    if not (sides[side][0] / "bench" / f"{name}.py").exists():
                        continue  # a benchmark newer than REF: its rows show "n/a" before
                    rows = run_one(name, *sides[side])
                    if rows is None:
                        failed.append(f"{name} ({side})")
                    else:
                        runs[side].append(rows)
            document["benchmarks"][name] = compare(runs)
    document["load_at_end"] = load()
    (root / COMPARISON).parent.mkdir(parents=True, exist_ok=True)
    (root / COMPARISON).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    refresh_readme(document, root / README)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def refresh_readme(document: dict, readme: Path) -> None:
    """The before/after table in bench/README.md, from before_after.json."""
    lines = [f"`python bench/run_all.py --before {document['before']}`: {document['before_commit']} → "
             f"{document['after_commit']}, {document['rounds']} rounds each, alternating; {document['date']}; "
             f"load average {document['load_at_start']} at the start, {document['load_at_end']} at the end.", "",
             "| benchmark | before | after | after / before |", "| --- | --- | --- | --- |"]
    for rows in document["benchmarks"].values():
        for row in rows:
            ratio = "" if row["after_over_before"] is None else f"{row['after_over_before']:.2f}"
            cells = [f"{value:g} {row['unit']}" if value is not None else "n/a" for value in (row["before"], row["after"])]
            lines.append(f"| {row['benchmark']} | {cells[0]} | {cells[1]} | {ratio} |")
    text = readme.read_text()
    if MARK_START not in text:
        text += f"\n## Before and after (`--before`)\n\n{MARK_START}\n{MARK_END}\n"
    head, _, rest = text.partition(MARK_START)
    _, _, tail = rest.partition(MARK_END)
    readme.write_text(f"{head}{MARK_START}\n" + "\n".join(lines) + f"\n{MARK_END}{tail}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: {' '.join(BENCHMARKS)})")
    parser.add_argument("--before", metavar="GIT_REF", help="also run every benchmark on this commit, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="with --before: runs of each benchmark per tree")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    if args.before:
        return before_after(args.before, names, args.rounds)
    failed = [name for name in names if run_one(name, ROOT, sys.executable) is None]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
