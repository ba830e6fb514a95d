"""docs/deploying.md's worker section, run as written: migrate, a worker in the background, the server; a turn."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import requests

from tests.docs.markdown import ROOT, blocks
from tests.docs.runner import wait_for_health
from tests.fakes.core import Reply
from tests.support.live import free_port

THIS = "tests/live/test_deploying_docs.py::test_the_worker_section_runs_as_written"


def commands(text: str) -> list[str]:
    return [line.split("#")[0].strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def argv(command: str) -> list[str]:
    words = shlex.split(command.rstrip("&").strip())
    return [sys.executable, "-m", "goose_api", *words[1:]] if words[0] == "goose-api" else words


def test_the_worker_section_runs_as_written(fake_openai, database_url, redis_url, tmp_path):
    (block,) = [b for b in blocks(ROOT / "docs" / "deploying.md") if b.options.get("covered_by") == THIS]
    *exports, migrate, worker, serve = commands(block.text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOSE_API_") and k not in ("DATABASE_URL",
                                                                                                 "REDIS_URL")}
    for line in exports:  # export A=... B=...: the values the reader sets, pointed at the suite's servers
        for pair in shlex.split(line)[1:]:
            name, _, value = pair.partition("=")
            env[name] = value
    assert env["DATABASE_URL"].startswith("postgresql://") and env["REDIS_URL"].startswith("redis://")
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, HOME=str(tmp_path), PYTHONPATH=str(ROOT),
               GOOSE_API_DATA_DIR=str(tmp_path / "data"), GOOSE_API_SESSIONS_DIR=str(tmp_path / "sessions"),
               GOOSE_API_PROVIDER="openai", GOOSE_API_WORKER_QUEUE=f"docs-{free_port()}", **fake_openai.env())
    done = subprocess.run(argv(migrate), env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert worker.endswith("&") and serve == "goose-api serve"
    log = tmp_path / "worker.log"
    port = free_port()
    with open(log, "wb") as out:
        background = subprocess.Popen(argv(worker), env=env, stdout=out, stderr=subprocess.STDOUT)
    server = subprocess.Popen([*argv(serve), "--bind", f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", server, "docs/deploying.md")
        fake_openai.add(Reply("from a worker"))
        answer = requests.post(f"http://127.0.0.1:{port}/session/start", json={"prompt": "hi"}, timeout=60,
                               headers={"x-api-key": env["GOOSE_API_KEY"]})
        assert answer.status_code == 200 and answer.json()["response"] == "from a worker", answer.text
        deadline = time.monotonic() + 30  # the worker writes its log lines in batches
        while f"queued run claimed session={answer.json()['session_id']}" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        background.send_signal(signal.SIGTERM)
        server.wait(30)
        assert background.wait(30) == 0
