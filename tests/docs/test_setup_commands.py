"""The README's two set-up commands, run for real: `make run` serves (and installs `goose-api`), `.ci/run` is
`make test`, and `make test-quick` deselects exactly the slow markers."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests

from tests.docs.markdown import ROOT, blocks, commands
from tests.docs.runner import wait_for_health
from tests.support.live import free_port

QUICK = "not live and not npm and not browser and not slow and not local_model"


def readme_setup_commands() -> list[str]:
    (block,) = [b for b in blocks(ROOT / "README.md") if b.options.get("covered_by", "").endswith(
        "::test_the_readme_shows_the_two_setup_commands")]
    return [command.text for command in commands(block.text)]


def dry_run(target: str) -> list[str]:
    """The commands ``make TARGET`` would run (also when this suite itself runs under make)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True).stdout.splitlines()


def test_the_readme_shows_the_two_setup_commands():
    assert readme_setup_commands() == ["make run", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_setup_commands()[1] in ci
    assert dry_run("test")[-1].endswith("-m pytest")


def test_make_test_quick_runs_the_tests_without_the_slow_markers():
    assert shlex.split(dry_run("test-quick")[-1])[-2:] == ["-m", QUICK]


@pytest.mark.live
@pytest.mark.slow
def test_make_run_installs_the_project_and_serves_the_local_model(tmp_path):
    """`make run` on a virtualenv that lacks the project: it installs it (editable) and serves on the default
    provider. The new virtualenv sees this one's packages through a .pth file, so nothing is downloaded but the
    build backend of the editable install."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "this-checkout-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    home, port = tmp_path / "home", free_port()
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GOOSE_API_PORT": str(port),
           **{name: value for name, value in os.environ.items() if name.startswith("PIP_")}}
    process = subprocess.Popen(["make", "run", f"VENV={venv}"], cwd=ROOT, env=env, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url, process, "make run", timeout=300)
        key = (home / ".local/share/goose-api/api_key").read_text().strip()
        config = requests.get(url + "/provider/config", headers={"x-api-key": key}, timeout=30).json()
        assert config["provider"] == "local" and config["configured"] is True
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert (venv / "bin" / "goose-api").is_file(), output
    version = subprocess.run([str(venv / "bin" / "goose-api"), "--help"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and "ask" in version.stdout
    assert not (home / ".gunicorn").exists(), "gunicorn made a control socket in HOME"

