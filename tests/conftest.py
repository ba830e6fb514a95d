"""Shared fixtures: isolated data dirs, a fake OpenAI API, the app, a Flask client, a live gunicorn.

Also the ``live`` marker for every test that runs a real gunicorn through a fixture (``live_server``, a
module's shared server) or lives in tests/live/; the other markers are set where the tests are
(docs/development.md lists them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from goose_api import create_app
from tests.fakes.openai import OpenAIFake
from tests.support.app import ApiClient, settings_for
from tests.support.live import LiveServer, live_env, start_live_server

LIVE_DIR = Path(__file__).resolve().parent / "live"
LIVE_FIXTURES = {"live_server", "shared_fake"}  # shared_fake: tests.support.shared_server's module servers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(LIVE_DIR) or LIVE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


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
def app_without_tools(fake_openai, dirs):
    """The app without the developer extension, for modules whose tests make no tool call: each turn of
    the default app starts that MCP server, which is most of a short test's time."""
    application = create_app(settings_for(fake_openai, dirs, extensions={"developer": {"enabled": False}}))
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


@pytest.fixture(scope="session")
def postgres_server():
    """The suite's PostgreSQL server (``DATABASE_URL``'s, else a throwaway one), for the whole session."""
    from tests.support.services import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """The suite's Redis server (``REDIS_URL``'s, else a throwaway one), for the whole session."""
    from tests.support.services import start_redis

    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture
def database_url(postgres_server) -> Iterator[str]:
    """A fresh, migrated database of its own for one test."""
    url = postgres_server.fresh_database()
    yield url
    postgres_server.drop_database(url)
