"""goose-api migrate: versioned migrations applied once; a bad or behind database refused with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psycopg
import pytest

from goose_api import create_app
from goose_api.errors import ConfigurationError
from goose_api.postgres import migrate
from goose_api.postgres.db import Database
from goose_api.settings import Settings
from tests.support.app import settings_for

TABLES = {"sessions", "messages", "session_owners", "session_locks", "run_records", "run_events", "run_journal",
          "run_queue", "counters", "idempotency", "kv", "tool_permissions", "webhook_deliveries", "auth_failures"}


@pytest.fixture
def empty_url(postgres_server):
    url = postgres_server.fresh_database(migrated=False)
    yield url
    postgres_server.drop_database(url)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def goose_api(*args: str, url: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOSE_API_") and k != "DATABASE_URL"}
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "goose_api", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_each_migration_is_applied_once(empty_url):
    db = Database(empty_url).open()
    try:
        assert migrate.migrate(db) == [version for version, _, _ in migrate.migrations()]
        assert migrate.migrate(db) == []
        assert migrate.applied(db) == {1}
    finally:
        db.close()
    assert TABLES | {"schema_migrations"} <= tables(empty_url)


def test_two_processes_migrating_at_once_apply_it_once(empty_url):
    results, errors = [], []

    def run():
        db = Database(empty_url).open()
        try:
            results.append(migrate.migrate(db))
        except Exception as exc:  # the test fails below with what happened
            errors.append(exc)
        finally:
            db.close()
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(results) == [[], [], [1]]


def test_the_server_refuses_a_database_whose_schema_is_behind(empty_url, fake_openai, dirs):
    with pytest.raises(ConfigurationError, match="goose-api migrate"):
        create_app(settings_for(fake_openai, dirs, database_url=empty_url))


def test_the_command_migrates_the_database_at_database_url(empty_url):
    done = goose_api("migrate", url=empty_url)
    assert done.returncode == 0, done.stderr
    assert "applied now: 0001" in done.stdout
    again = goose_api("migrate", url=empty_url)
    assert again.returncode == 0 and "applied now: none" in again.stdout
    assert TABLES <= tables(empty_url)


@pytest.mark.parametrize("url, says", [
    ("mysql://user:secret@127.0.0.1/db", "must be a postgres:// or postgresql:// URL"),
    ("postgres://user:secret@127.0.0.1:1/db", "Cannot use the database at DATABASE_URL"),
    (None, "set DATABASE_URL"),
])
def test_a_wrong_or_unreachable_url_is_a_clear_error(url, says):
    done = goose_api("migrate", url=url)
    assert done.returncode == 2
    assert says in done.stderr and "DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr


def test_the_server_names_the_variable_when_the_database_is_unreachable(fake_openai, dirs):
    with pytest.raises(ConfigurationError) as refused:
        create_app(settings_for(fake_openai, dirs, database_url="postgresql://goose:secret@127.0.0.1:1/none"))
    assert "DATABASE_URL" in str(refused.value) and "secret" not in str(refused.value)


def test_database_url_is_read_from_the_environment_procfile_hosts_set(tmp_path):
    settings = Settings.load(environ={"DATABASE_URL": "postgres://u:p@db.example:5432/app", "HOME": str(tmp_path)},
                             cwd=tmp_path)
    assert settings.database_url == "postgres://u:p@db.example:5432/app"
    assert settings.sources["database_url"] == "DATABASE_URL"
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        Settings.load(environ={"DATABASE_URL": "sqlite:///x.db", "HOME": str(tmp_path)}, cwd=tmp_path)


def test_gunicorn_stops_with_one_clear_line_on_an_unreachable_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOOSE_API_")}
    env.update(DATABASE_URL="postgres://goose:secret@127.0.0.1:1/none", HOME=str(tmp_path), GOOSE_API_PORT="0",
               GOOSE_API_DATA_DIR=str(tmp_path / "data"), GOOSE_API_SESSIONS_DIR=str(tmp_path / "sessions"),
               GOOSE_API_KEY="k")
    done = subprocess.run([sys.executable, "-m", "goose_api", "serve", "--bind", "127.0.0.1:0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "goose-api cannot start: Cannot use the database at DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr and "secret" not in done.stderr
