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


def test_only_routes_and_the_hooks_look_up_the_apps_services():
    """Helpers of the web layer are given what they need (the run service, a store); only the blueprints and the
    app's wiring reach for ``services()``."""
    web = ROOT / "goose_api" / "web"
    looking = sorted(str(path.relative_to(web)) for path in web.rglob("*.py")
                     if "services()" in path.read_text(encoding="utf-8"))
    blueprints = [name for name in looking if name.startswith("routes/") or name.endswith("/routes.py")]  # dialects
    assert sorted(blueprints + ["current.py"]) == sorted(looking), looking


def test_no_module_but_the_message_model_reads_content_items_by_their_keys():
    """``item["toolCall"]["value"]["name"]`` and friends are written in conversation.py only (the providers, which
    translate the model to wire formats, and the client, which may not import it, read the JSON themselves)."""
    keys = ('["toolCall"]', '["toolResult"]', '.get("toolCall")', '.get("toolResult")')
    readers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "goose_api").rglob("*.py")
                     if any(key in path.read_text(encoding="utf-8") for key in keys))
    allowed = ("goose_api/conversation.py", "goose_api/providers/", "goose_api/client/")
    assert [name for name in readers if not name.startswith(allowed)] == []
