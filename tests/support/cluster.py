"""Several goose-api hosts on one machine: web processes and workers that share only PostgreSQL and Redis.

Each web is a real gunicorn with its own HOME, data dir and sessions dir (a
host's disk); each worker runs the Procfile's ``worker:`` command, with its own
HOME and data dir too. What they share is the database, the Redis server, the
fake model, and one working dir (the project checkout every host would have,
where the tools run).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.openai import OpenAIFake
from tests.support.app import ROOT
from tests.support.live import LiveServer, live_env, start_live_server

READY_TIMEOUT = 60.0


def procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    return {name.strip(): command.strip() for name, _, command in (line.partition(":") for line in lines)}


def procfile_command(name: str) -> list[str]:
    """A Procfile line as this virtualenv runs it (``python`` is this interpreter)."""
    command = shlex.split(procfile()[name])
    return [sys.executable if command[0] == "python" else command[0], *command[1:]]


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    tmp: Path
    fake: OpenAIFake
    database_url: str
    redis_url: str
    settings: dict[str, str] = field(default_factory=dict)
    webs: list[LiveServer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    @property
    def work(self) -> Path:
        path = self.tmp / "work"
        path.mkdir(exist_ok=True)
        return path

    def host_dirs(self, name: str) -> dict[str, Path]:
        dirs = {part: self.tmp / name / part for part in ("home", "data", "sessions")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        return {**dirs, "work": self.work}

    def env(self, name: str) -> dict[str, str]:
        return live_env(self.fake, self.host_dirs(name), DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                        **self.settings)

    def start_web(self, index: int | None = None) -> LiveServer:
        index = len(self.webs) if index is None else index
        server = start_live_server(self.env(f"web{index}"), self.tmp, self.tmp / f"web{index}-{time.time_ns()}.log")
        if index < len(self.webs):
            self.webs[index] = server
        else:
            self.webs.append(server)
        return server

    def wipe_web(self, index: int) -> LiveServer:
        """Stop a web, delete its HOME, data and sessions dirs (a Procfile host's restart), start it again."""
        self.webs[index].stop()
        shutil.rmtree(self.tmp / f"web{index}")
        return self.start_web(index)

    def start_worker(self) -> Worker:
        name = f"worker{len(self.workers)}"
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **self.env(name)}
        log_path = self.tmp / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(procfile_command("worker"), cwd=self.tmp, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        worker = Worker(process, log_path)
        self.workers.append(worker)
        deadline = time.monotonic() + READY_TIMEOUT
        while "worker ready" not in worker.log():
            if not worker.alive() or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start:\n{worker.log()}")
            time.sleep(0.05)
        return worker

    def owner_of(self, run_id: str, timeout: float = READY_TIMEOUT) -> Worker:
        """The worker that claimed ``run_id`` (its log says so; lines are written in batches)."""
        pattern = re.compile(rf"queued run claimed session=\S+ run={re.escape(run_id)}\b")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.workers:
                if pattern.search(worker.log()):
                    return worker
            time.sleep(0.05)
        pytest.fail(f"no worker claimed {run_id}")

    def kill(self, worker: Worker) -> None:
        """SIGKILL: nothing gets to clean up, like a host that vanished."""
        os.kill(worker.pid, signal.SIGKILL)
        worker.process.wait(10)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for web in self.webs:
            web.stop()

    def logs(self) -> str:
        return "\n".join([*(w.log() for w in self.workers), *(web.log() for web in self.webs)])
