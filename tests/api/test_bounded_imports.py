"""Imports are bounded: a sessions.db whose tables compute on read is refused before a row is read (memory stays
flat), files and sessions over the caps are refused, and so are triggers on the tables read."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from goose_api import create_app
from goose_api.sessions import goose_db
from tests.api.test_errors import assert_error
from tests.support.app import ApiClient, settings_for

BLOW_UP = "printf('%.*c', 400000000, 'x')"  # a 400 MB string from one expression, computed on every read
MESSAGE = {"role": "user", "created": 1700000000, "content": [{"type": "text", "text": "hello"}]}


def sessions_db(path: Path, *changes: str) -> str:
    """A one-session goose sessions.db with ``changes`` (SQL) applied, base64 as the import takes it."""
    goose_db.write(path, goose_db.DbSession("s1", {"working_dir": "/", "description": "d"}, [MESSAGE]))
    return compact(path, *changes)


def compact(path: Path, *changes: str) -> str:
    """Apply ``changes``, then rewrite the file with 1 KiB pages (a small file), base64."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for change in changes:
            conn.execute(change)
        conn.execute("PRAGMA page_size = 1024")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return base64.b64encode(path.read_bytes()).decode()


def rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096


@contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """The most this process's resident memory rose above where it was, sampled while the block runs."""
    seen = {"base": rss(), "growth": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            seen["growth"] = max(seen["growth"], rss() - seen["base"])
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()
        seen["growth"] = max(seen["growth"], rss() - seen["base"])


def test_a_generated_column_that_blows_up_on_read_is_refused_with_memory_flat(client, tmp_path, dirs):
    path = tmp_path / "sessions.db"
    data = sessions_db(path, f"ALTER TABLE sessions ADD COLUMN pad TEXT GENERATED ALWAYS AS ({BLOW_UP}) VIRTUAL")
    assert path.stat().st_size <= 16 * 1024
    with peak_rss() as memory:
        status, answer, _ = client.post("/sessions/import", {"format": "goose-sqlite", "data": data})
    assert_error(status, answer, 400, "bad_request")
    assert "generated" in answer["message"]
    assert memory["growth"] < 64 * 1024 * 1024, f"the process grew by {memory['growth'] // 2**20} MiB"
    assert list(dirs["sessions"].iterdir()) == []


@pytest.mark.parametrize("changes,word", [
    (["ALTER TABLE messages RENAME TO real_messages",
      f"CREATE VIEW messages AS SELECT session_id, role, {BLOW_UP} AS content_json, created_timestamp, "
      "timestamp, id FROM real_messages"], "view"),
    (["DROP TABLE messages",
      "CREATE VIRTUAL TABLE messages USING fts5(session_id, role, content_json, created_timestamp, timestamp, id)"],
     "virtual table"),
])
def test_tables_that_run_code_on_read_are_refused(client, tmp_path, changes, word):
    data = sessions_db(tmp_path / "sessions.db", *changes)
    with peak_rss() as memory:
        status, answer, _ = client.post("/sessions/import", {"format": "goose-sqlite", "data": data})
    assert_error(status, answer, 400, "bad_request")
    assert word in answer["message"]
    assert memory["growth"] < 64 * 1024 * 1024


@pytest.mark.parametrize("table", ["messages", "sessions"])
def test_a_trigger_on_a_table_read_is_refused(client, tmp_path, dirs, table):
    """goose makes no triggers on sessions or messages; a file with one is refused (the import only reads, and the
    file is opened read-only and immutable, so it could not fire either)."""
    data = sessions_db(tmp_path / "sessions.db",
                       "CREATE TABLE log (x TEXT)",
                       f"CREATE TRIGGER boom AFTER INSERT ON {table} BEGIN INSERT INTO log VALUES ({BLOW_UP}); END")
    with peak_rss() as memory:
        status, answer, _ = client.post("/sessions/import", {"format": "goose-sqlite", "data": data})
    assert_error(status, answer, 400, "bad_request")
    assert "triggers (boom)" in answer["message"]
    assert memory["growth"] < 64 * 1024 * 1024
    assert list(dirs["sessions"].iterdir()) == []


def test_a_trigger_on_another_table_is_let_be(client, tmp_path):
    data = sessions_db(tmp_path / "sessions.db", "CREATE TABLE log (x TEXT)", "CREATE TABLE other (y TEXT)",
                       f"CREATE TRIGGER boom AFTER INSERT ON other BEGIN INSERT INTO log VALUES ({BLOW_UP}); END")
    status, answer, _ = client.post("/sessions/import", {"format": "goose-sqlite", "data": data})
    assert (status, answer["message_count"]) == (201, 1), answer


@pytest.fixture
def capped(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, import_max_bytes=20_000, import_max_messages=3))
    yield ApiClient(app.test_client())
    app.extensions["goose_api"].close()


def jsonl_of(messages: list[dict]) -> str:
    return "".join(json.dumps(line) + "\n" for line in [{"working_dir": "/"}, *messages])


def pairs(count: int, text: str = "x") -> list[dict]:
    return [{**MESSAGE, "role": ("user", "assistant")[n % 2], "content": [{"type": "text", "text": text}]}
            for n in range(count)]


@pytest.mark.parametrize("fmt,data,word", [
    ("goose-jsonl", jsonl_of(pairs(4)), "lines"),
    ("goose-jsonl", jsonl_of(pairs(2, "y" * 30_000)), "import_max_bytes"),
    ("json", {"working_dir": "/", "conversation": pairs(4)}, "import_max_messages"),
    ("json", {"working_dir": "/", "conversation": pairs(2, "y" * 30_000)}, "import_max_bytes"),
])
def test_text_imports_over_the_caps_are_refused(capped, dirs, fmt, data, word):
    status, answer, _ = capped.post("/sessions/import", {"format": fmt, "data": data})
    assert_error(status, answer, 400, "bad_request")
    assert word in answer["message"]
    assert list(dirs["sessions"].iterdir()) == []


def test_imports_within_the_caps_are_taken(capped):
    for fmt, data in (("goose-jsonl", jsonl_of(pairs(3))), ("json", {"working_dir": "/", "conversation": pairs(3)})):
        status, answer, _ = capped.post("/sessions/import", {"format": fmt, "data": data})
        assert (status, answer["message_count"]) == (201, 3), answer


def test_a_sessions_db_over_the_caps_is_refused(capped, tmp_path):
    big = sessions_db(tmp_path / "big.db", "CREATE TABLE filler (x BLOB)", "INSERT INTO filler VALUES (zeroblob(30000))")
    status, answer, _ = capped.post("/sessions/import", {"format": "goose-sqlite", "data": big})
    assert_error(status, answer, 400, "bad_request")
    assert "import_max_bytes" in answer["message"]
    path = tmp_path / "many.db"
    goose_db.write(path, goose_db.DbSession("s1", {"working_dir": "/"}, pairs(4)))
    status, answer, _ = capped.post("/sessions/import", {"format": "goose-sqlite", "data": compact(path)})
    assert_error(status, answer, 400, "bad_request")
    assert "more than 3 messages" in answer["message"]
