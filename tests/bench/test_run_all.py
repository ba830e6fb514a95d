"""bench/run_all.py --before: both trees, alternating, in one run; the ratios recorded; the worktree removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench import run_all

TINY = '''"""A benchmark that takes no time: it logs which tree ran it and reports one row."""
import json
from pathlib import Path

Path("{log}").open("a").write("{side}\\n")
Path("bench/results").mkdir(parents=True, exist_ok=True)
Path("bench/results/tiny.json").write_text(json.dumps({{"rows": [
    {{"benchmark": "tiny turn", "goal": "", "baseline": "1 ms", "ours": "{ms} ms", "ratio": {ms}, "met": None}}]}}))
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def make_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo, log = tmp_path / "repo", tmp_path / "order.log"
    (repo / "bench").mkdir(parents=True)
    (repo / "bench" / "__init__.py").write_text("")
    (repo / "bench" / "README.md").write_text("# Benchmarks\n")
    git(repo, "init", "-q")
    for side, ms in (("before", 10), ("after", 12)):
        (repo / "bench" / "tiny.py").write_text(TINY.format(log=log, side=side, ms=ms))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", side)
    return repo, log


def test_before_runs_both_trees_alternating_and_records_the_ratios(tmp_path):
    repo, log = make_repo(tmp_path)
    assert run_all.before_after("HEAD~1", ["tiny"], rounds=2, root=repo) == 0
    assert log.read_text().split() == ["after", "before", "before", "after"]
    document = json.loads((repo / "bench" / "results" / "before_after.json").read_text())
    (row,) = document["benchmarks"]["tiny"]
    assert (row["before"], row["after"], row["after_over_before"], row["unit"]) == (10.0, 12.0, 1.2, "ms")
    assert document["load_at_start"] and document["load_at_end"]
    table = (repo / "bench" / "README.md").read_text()
    assert "| tiny turn | 10 ms | 12 ms | 1.20 |" in table and "--before HEAD~1" in table
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    assert len(worktrees.splitlines()) == 1, worktrees


def test_a_failed_run_is_reported_and_the_others_still_compared(tmp_path):
    repo, log = make_repo(tmp_path)
    (repo / "bench" / "tiny.py").write_text("raise SystemExit(3)\n")
    git(repo, "commit", "-q", "-am", "broken after")
    assert run_all.before_after("HEAD~1", ["tiny"], rounds=1, root=repo) == 1
    (row,) = json.loads((repo / "bench" / "results" / "before_after.json").read_text())["benchmarks"]["tiny"]
    assert (row["before"], row["after"], row["after_over_before"]) == (12.0, None, None)
