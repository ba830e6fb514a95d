"""``goose-api worker`` refuses what cannot work with a message that says what to set, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.app import ROOT
from tests.support.services import free_port


def worker(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
               "GOOSE_API_DATA_DIR": str(tmp_path / "data"), "GOOSE_API_SESSIONS_DIR": str(tmp_path / "sessions"),
               "GOOSE_API_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", **env}
    return subprocess.run([sys.executable, "-m", "goose_api", "worker", *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)


def test_without_redis_url_it_says_to_set_it(tmp_path):
    done = worker(tmp_path)
    assert done.returncode == 2 and "REDIS_URL is not set" in done.stderr and "Traceback" not in done.stderr


def test_redis_url_without_a_database_says_to_set_database_url(tmp_path):
    done = worker(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert done.returncode == 2 and "Set DATABASE_URL" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_redis_names_redis_url(tmp_path, database_url):
    done = worker(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", DATABASE_URL=database_url)
    assert done.returncode == 3, done.stderr
    assert "Redis (REDIS_URL) cannot be reached" in done.stderr and "Traceback" not in done.stderr


def test_help_names_the_threads_option(tmp_path):
    done = worker(tmp_path, "--help")
    assert done.returncode == 0 and "--threads" in done.stdout
