"""The package layout is the architecture: the import contracts in pyproject.toml hold, and the code is lint-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.app import ROOT

BIN = Path(sys.executable).parent


def test_the_import_contracts_hold():
    done = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The checker is live: a storage module importing the web package breaks a contract."""
    tree = tmp_path / "tree"
    subprocess.run(["cp", "-r", str(ROOT / "goose_api"), str(tree)], check=True)
    (tree / "storage" / "bad.py").write_text("from goose_api.web import app\n")
    config = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "goose_api").symlink_to(tree)
    done = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(tmp_path), "PATH": str(BIN)})
    assert done.returncode != 0 and "Storage imports nothing of ours BROKEN" in done.stdout


def test_no_unused_imports_or_undefined_names():
    done = subprocess.run([str(BIN / "ruff"), "check", "--output-format", "concise", "goose_api", "extensions",
                           "tests", "bench", "scripts"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
