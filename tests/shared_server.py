"""A live server and a scripted fake provider shared by the tests of one module.

Starting gunicorn takes a second or two; the client and CLI tests share one
per module. Each test scripts its own provider steps (``fake``), which it must
use up, and uses its own session ids.

    from tests.shared_server import fake, shared_fake  # noqa: F401  (fixtures)

    @pytest.fixture(scope="module")
    def server(shared_fake, tmp_path_factory):
        yield from module_server(shared_fake, tmp_path_factory, "mine", GOOSE_API_MODE="approve")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import LiveServer, live_env, start_live_server
from tests.fakes.core import ToolCall
from tests.fakes.openai import OpenAIFake


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


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
