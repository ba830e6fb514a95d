"""A live server and a scripted fake provider shared by the tests of one module.

Starting gunicorn takes a second or two; the client and CLI tests share one
per module. Each test scripts its own provider steps (``fake``), which it must
use up, and uses its own session ids.

    from tests.support.shared_server import fake, shared_fake  # noqa: F401  (fixtures)

    @pytest.fixture(scope="module")
    def server(shared_fake, tmp_path_factory):
        yield from module_server(shared_fake, tmp_path_factory, "mine", GOOSE_API_MODE="approve")
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.fakes.core import ToolCall
from tests.fakes.openai import OpenAIFake
from tests.support.live import LiveServer, live_env, start_live_server
from tests.support.mcp_fixtures import wait_until


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def gate(name: str, call_id: str) -> ToolCall:
    """A shell call that touches ``<name>.waiting`` in the working dir and holds its turn until
    ``open_gate`` (at most 30 s): a run that is surely busy, for as long as a test needs."""
    return shell(f"touch {name}.waiting; for i in $(seq 600); do [ -f {name}.go ] && exit 0; sleep 0.05; done; "
                 "exit 1", call_id)


def wait_at_gate(live: LiveServer, name: str) -> None:
    wait_until(lambda: (work_dir(live) / f"{name}.waiting").exists(), 20, f"the run to reach gate {name}")


def open_gate(live: LiveServer, name: str) -> None:
    (work_dir(live) / f"{name}.go").touch()


def work_dir(live: LiveServer) -> Path:
    """The working dir of a ``module_server`` (its runs' tools run there)."""
    return live.log_path.parent / "work"


def kill_worker_of(live: LiveServer, session_id: str) -> None:
    """SIGKILL the worker that started the session's run (gunicorn forks another): the run is left
    ``running`` with a dead owner, as after a crash; the next reader finds it interrupted.

    Returns once the worker is gone, its connections closed (a client's pooled one is then not reused).
    """
    pid = wait_until(lambda: _worker_pid(live, session_id), what="the worker's pid")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _exists(pid), what=f"worker {pid} to be gone")


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _worker_pid(live: LiveServer, session_id: str) -> int | None:
    marker = f"run started session={session_id} "
    line = next((line for line in live.log().splitlines() if marker in line), None)
    return int(line.split("[", 1)[1].split("]", 1)[0]) if line else None


def make_dirs(root: Path) -> dict[str, Path]:
    paths = {name: root / name for name in ("data", "sessions", "home", "work")}
    for path in paths.values():
        path.mkdir()
    return paths


def module_server(fake: OpenAIFake, factory: Any, name: str, **env: str) -> Iterator[LiveServer]:
    root = factory.mktemp(name)
    live = start_live_server(live_env(fake, make_dirs(root), **env), root, root / "gunicorn.log")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[OpenAIFake]:
    with OpenAIFake() as fake:
        yield fake


@pytest.fixture
def fake(shared_fake) -> Iterator[OpenAIFake]:
    """The module's fake; every step a test scripts must be used by the end of it."""
    try:
        yield shared_fake
        shared_fake.assert_done()
    finally:
        shared_fake.steps.clear()
        shared_fake.violations.clear()
        shared_fake.requests.clear()
