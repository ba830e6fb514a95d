"""docs/deploying.md's PostgreSQL section, run as written against a throwaway database."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

import requests

from goose_api import create_app
from tests.docs.markdown import ROOT, blocks
from tests.docs.runner import wait_for_health
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.live import free_port

THIS = "tests/postgres/test_deploying_docs.py::test_the_postgresql_section_runs_as_written"


def steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, the lines ``# prints:`` shows for it) of a shell block."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# prints: "):
            out[-1][1].append(line.removeprefix("# prints: "))
        elif line.strip() and not line.startswith("#"):
            out.append((line.strip(), []))
    return out


def run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    argv = [sys.executable, "-m", "goose_api", *argv[1:]] if argv[0] == "goose-api" else argv
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def file_installation(fake_openai, dirs) -> None:
    """Two sessions made by a server on files (what --from-files moves)."""
    app = create_app(settings_for(fake_openai, {k: v for k, v in dirs.items() if k != "database_url"},
                                  extensions={"developer": {"enabled": False}}))
    fake_openai.add(Reply("one"), Reply("two"))
    client = ApiClient(app.test_client())
    for name in ("first", "second"):
        assert client.post("/session/start", {"prompt": name, "session_id": name})[0] == 200
    app.extensions["goose_api"].close()


def test_the_postgresql_section_runs_as_written(postgres_server, fake_openai, dirs, tmp_path):
    url = postgres_server.fresh_database(migrated=False)
    try:
        migrate_block, move_block = [b for b in blocks(ROOT / "docs" / "deploying.md")
                                     if b.options.get("covered_by") == THIS]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOOSE_API_") and k != "DATABASE_URL"}
        env.update(HOME=str(dirs["home"]), GOOSE_API_DATA_DIR=str(tmp_path / "server-data"), GOOSE_API_KEY="k",
                   GOOSE_API_SESSIONS_DIR=str(tmp_path / "server-sessions"), PYTHONPATH=str(ROOT))
        (export, _), (migrate, printed), (serve, _) = steps(migrate_block.text)
        assert export.startswith("export DATABASE_URL=postgres://")
        env["DATABASE_URL"] = url
        done = run(migrate, env)
        assert done.returncode == 0 and done.stdout.splitlines() == printed, (done.stdout, done.stderr)

        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "goose_api", *shlex.split(serve)[1:], "--bind",
                                   f"127.0.0.1:{port}"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_health(f"http://127.0.0.1:{port}", server, "docs/deploying.md")
            listed = requests.get(f"http://127.0.0.1:{port}/sessions", headers={"x-api-key": "k"}, timeout=10)
            assert listed.status_code == 200 and listed.json()["sessions"] == []
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)

        file_installation(fake_openai, dirs)
        ((move, printed),) = steps(move_block.text)
        move = move.replace("~/.local/share/goose-api", str(dirs["data"])).replace(
            "~/.local/share/goose/sessions", str(dirs["sessions"]))
        done = run(move, env)
        assert done.returncode == 0 and done.stdout.splitlines() == printed, (done.stdout, done.stderr)
        again = run(move, env)
        assert again.returncode == 0 and "sessions moved: 0" in again.stdout
        assert "sessions already in the database: 2" in again.stdout
    finally:
        postgres_server.drop_database(url)
