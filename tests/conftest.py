"""Shared fixtures: isolated data dirs, a fake OpenAI API, the app, a Flask client, a live gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from goose_api import create_app
from tests.fakes.openai import OpenAIFake
from tests.support.app import ApiClient, settings_for
from tests.support.live import LiveServer, live_env, start_live_server


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("data", "sessions", "home", "work")}
    for path in paths.values():
        path.mkdir()
    return paths


@pytest.fixture
def fake_openai() -> Iterator[OpenAIFake]:
    """A scripted OpenAI chat-completions server; every scripted step must be used."""
    with OpenAIFake() as fake:
        yield fake
        fake.assert_done()


@pytest.fixture
def app(fake_openai, dirs):
    application = create_app(settings_for(fake_openai, dirs))
    yield application
    application.extensions["goose_api"].close()


@pytest.fixture
def client(app) -> ApiClient:
    return ApiClient(app.test_client())


@pytest.fixture
def live_server(fake_openai, dirs, tmp_path) -> Iterator[LiveServer]:
    server = start_live_server(live_env(fake_openai, dirs), tmp_path, tmp_path / "gunicorn.log")
    yield server
    server.stop()
