"""Fork, export and import: round trips through every format, validated as goose's; sessions.db layout."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys

import pytest

from goose_api import create_app
from goose_api.sessions import goose_db
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ROOT, ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file, stored_session_ids

# goose's sessions.db as its first SQLite release created it (crates/goose/src/session/session_manager.rs,
# schema version 1): table -> columns, in order.
GOOSE_V1_LAYOUT = {
    "schema_version": ["version", "applied_at"],
    "sessions": ["id", "description", "working_dir", "created_at", "updated_at", "extension_data", "total_tokens",
                 "input_tokens", "output_tokens", "accumulated_total_tokens", "accumulated_input_tokens",
                 "accumulated_output_tokens", "schedule_id", "recipe_json"],
    "messages": ["id", "session_id", "role", "content_json", "created_timestamp", "timestamp", "tokens"],
}


@pytest.fixture
def tooled(client, fake_openai, dirs) -> dict:
    """A session of four messages: prompt, tool request, tool response, answer."""
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo hi"}, id="t1")]),
                    Reply("Said hi."))
    status, body, _ = client.post("/session/start", {"prompt": "say hi please", "session_id": "src"})
    assert status == 200, body
    _, messages = assert_goose_session(goose_file(dirs, "src"))
    assert len(messages) == 4
    return {"messages": messages}


@pytest.mark.slow
def test_fork_copies_a_prefix_and_never_splits_a_tool_call(client, tooled, dirs):
    status, body, _ = client.post("/session/src/fork", {})
    assert status == 201, body
    _, copied = assert_goose_session(goose_file(dirs, body['session_id']))
    assert copied == tooled["messages"] and body["source_id"] == "src" and body["message_count"] == 4
    status, body, _ = client.post("/session/src/fork", {"at_message": 1, "session_id": "one"})
    assert (status, body["session_id"]) == (201, "one")
    assert assert_goose_session(goose_file(dirs, "one"))[1] == tooled["messages"][:1]
    status, body, _ = client.post("/session/src/fork", {"at_message": 2})
    assert status == 400 and "fork at 1 or 3" in body["message"], body
    assert client.post("/session/src/fork", {"at_message": 5})[0] == 400
    assert client.post("/session/src/fork", {"session_id": "one"})[0] == 409
    assert client.get("/session/one")[0] == 200


@pytest.mark.slow
def test_a_fork_belongs_to_the_caller(fake_openai, dirs):
    keys = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})
    app = create_app(settings_for(fake_openai, dirs, api_keys=keys))
    alice, bob = ApiClient(app.test_client(), "alice-key"), ApiClient(app.test_client(), "bob-key")
    try:
        fake_openai.add(Reply("mine"))
        alice.post("/session/start", {"prompt": "x", "session_id": "alices"})
        assert bob.post("/session/alices/fork", {})[0] == 404
        forked = alice.post("/session/alices/fork", {"session_id": "alices-copy"})[1]["session_id"]
        assert bob.get(f"/session/{forked}")[0] == 404 and alice.get(f"/session/{forked}")[0] == 200
        assert bob.get("/session/alices/export")[0] == 404
    finally:
        app.extensions["goose_api"].close()


@pytest.mark.slow
def test_export_then_import_round_trips(client, tooled, dirs, tmp_path):
    original = goose_file(dirs, "src").read_text()
    status, _, response = client.get("/session/src/export")
    assert status == 200 and response.mimetype == "application/jsonl"
    assert response.mimetype_params == {"charset": "utf-8"}
    assert response.get_data(as_text=True) == original
    assert response.headers["Content-Disposition"] == 'attachment; filename="src.jsonl"'
    status, body, _ = client.post("/sessions/import", {"format": "goose-jsonl", "data": original,
                                                       "session_id": "from-jsonl"})
    assert (status, body["message_count"]) == (201, 4), body
    assert assert_goose_session(goose_file(dirs, "from-jsonl"))[1] == tooled["messages"]
    as_json = client.get("/session/src/export?format=json")[1]
    assert as_json["id"] == "src" and as_json["name"] == "say hi please" and as_json["message_count"] == 4
    assert as_json["conversation"] == tooled["messages"] and as_json["created_at"].endswith("Z")
    status, body, _ = client.post("/sessions/import", {"format": "json", "data": as_json})
    assert status == 201, body
    meta, messages = assert_goose_session(goose_file(dirs, body['session_id']))
    assert messages == tooled["messages"] and meta["description"] == "say hi please"
    assert meta["accumulated_total_tokens"] == 30
    markdown = client.get("/session/src/export?format=markdown")[2].get_data(as_text=True)
    assert markdown.startswith("# say hi please\n") and "## Assistant" in markdown
    assert "**Tool call** `developer__shell` (id `t1`)" in markdown and '"command": "echo hi"' in markdown
    assert client.post("/sessions/import", {"format": "goose-jsonl", "data": original,
                                            "session_id": "from-jsonl"})[0] == 409


@pytest.mark.slow
def test_sessions_db_export_has_goose_s_layout_and_imports_back(client, tooled, dirs, tmp_path):
    status, _, response = client.get("/session/src/export?format=goose-sqlite")
    assert status == 200 and response.mimetype == "application/vnd.sqlite3"
    db = tmp_path / "sessions.db"
    db.write_bytes(response.get_data())
    with sqlite3.connect(db) as conn:
        for table, columns in GOOSE_V1_LAYOUT.items():
            assert [row[1] for row in conn.execute(f"PRAGMA table_info({table})")] == columns, table
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
        row = conn.execute("SELECT id, description, working_dir, accumulated_total_tokens FROM sessions").fetchone()
        assert row == ("src", "say hi please", str(dirs["work"]), 30)
        stored = conn.execute("SELECT role, content_json, created_timestamp FROM messages WHERE session_id = 'src' "
                              "ORDER BY timestamp").fetchall()  # the order goose reads them in
    assert [{"role": r, "created": c, "content": json.loads(j)} for r, j, c in stored] == tooled["messages"]
    status, body, _ = client.post("/sessions/import", {"format": "goose-sqlite", "session_id": "from-db",
                                                       "data": base64.b64encode(db.read_bytes()).decode()})
    assert status == 201, body
    assert assert_goose_session(goose_file(dirs, "from-db"))[1] == tooled["messages"]


def test_the_cli_writes_into_a_sessions_db_and_reads_back(tooled, dirs, tmp_path):
    db = tmp_path / "goose" / "sessions.db"
    db.parent.mkdir()
    run = [sys.executable, "-m", "goose_api.sessions.goose_db"]
    done = subprocess.run([*run, "export", "--db", str(db), str(goose_file(dirs, "src"))],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    again = subprocess.run([*run, "export", "--db", str(db), str(goose_file(dirs, "src"))],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 1 and "already has a session src" in again.stderr
    out = tmp_path / "back.jsonl"
    done = subprocess.run([*run, "import", "--db", str(db), str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    meta, messages = assert_goose_session(out)
    assert messages == tooled["messages"] and meta["description"] == "say hi please"
    for text, says in (("not json\n", "line 1 is not JSON"), ("[1]\n", "line 1 is not a goose metadata object")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(text)
        refused = subprocess.run([*run, "export", "--db", str(db), str(bad)], capture_output=True, text=True,
                                 cwd=ROOT, timeout=60)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr


@pytest.mark.parametrize("fmt, data, says", [
    ("goose-jsonl", '{"working_dir": "/", "description": "x"}\n{"role": "robot", "created": 1, "content": []}\n',
     "message 1 is not a goose message: role must be one of"),
    ("goose-jsonl", '{"working_dir": "/"}\nnot json\n', "line 2 is not JSON"),
    ("goose-jsonl", '[1]\n', "metadata (JSONL line 1) must be a JSON object"),
    ("goose-jsonl", '{"working_dir": "/", "total_tokens": -1}\n', "total_tokens must be null or a whole number"),
    ("goose-jsonl", '{"working_dir": "/"}\n'
                    '{"role": "assistant", "created": 1, "content": [{"type": "toolRequest", "id": "a", "toolCall": '
                    '{"status": "success", "value": {"name": "x", "arguments": {}}}}]}\n'
                    '{"role": "user", "created": 1, "content": [{"type": "text", "text": "no answer"}]}\n',
     "message 2 does not answer the tool requests ['a'] of message 1"),
    ("json", "not an object", "goose Session JSON object"),
    ("goose-sqlite", "not base64!", "base64"),
    ("goose-sqlite", base64.b64encode(b"not a database").decode(), "cannot import the sessions.db"),
])
def test_import_rejects_what_goose_could_not_read(client, dirs, fmt, data, says):
    status, body, _ = client.post("/sessions/import", {"format": fmt, "data": data, "session_id": "bad"})
    assert (status, body["error"]) == (400, "bad_request") and says in body["message"], body
    assert "bad" not in stored_session_ids(dirs)


def test_an_imported_working_dir_that_is_not_here_falls_back(client, dirs):
    data = '{"working_dir": "/no/such/dir", "description": "moved"}\n'
    status, body, _ = client.post("/sessions/import", {"format": "goose-jsonl", "data": data})
    assert (status, body["working_dir"]) == (201, str(dirs["work"])), body
    status, body, _ = client.post("/sessions/import", {"format": "goose-jsonl", "data": data,
                                                       "working_dir": "/no/such/dir"})
    assert status == 400 and "working_dir" in body["message"]


def test_goose_db_reads_later_schemas(tmp_path, dirs):
    """A sessions.db of a later goose (more columns: name, metadata_json, session_type...) reads the same."""
    db = tmp_path / "later.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT DEFAULT '', description TEXT NOT NULL DEFAULT '',
              user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user', working_dir TEXT NOT NULL,
              created_at TIMESTAMP, updated_at TIMESTAMP, extension_data TEXT DEFAULT '{}', total_tokens INTEGER,
              input_tokens INTEGER, output_tokens INTEGER, accumulated_total_tokens INTEGER,
              accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER, schedule_id TEXT);
            CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, role TEXT NOT NULL,
              content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL, timestamp TIMESTAMP, tokens INTEGER,
              metadata_json TEXT, message_id TEXT);
            INSERT INTO sessions (id, name, working_dir) VALUES ('20260101_1', 'named later', '/tmp');
            INSERT INTO messages (session_id, role, content_json, created_timestamp, timestamp)
              VALUES ('20260101_1', 'user', '[{"type": "text", "text": "hello"}]', 5, '2026-01-01 00:00:00');
        """)
    found = goose_db.read(db)
    assert (found.id, found.metadata["description"], found.messages) == (
        "20260101_1", "named later", [{"role": "user", "created": 5, "content": [{"type": "text", "text": "hello"}]}])
    goose_db.write(db, goose_db.DbSession("ours", {"working_dir": "/w", "description": "d"},
                                          [{"role": "user", "created": 7, "content": []}]))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT name, session_type FROM sessions WHERE id = 'ours'").fetchone() == ("d", "user")
        assert conn.execute("SELECT message_id FROM messages WHERE session_id = 'ours'").fetchone()[0] \
            .startswith("msg_ours_")
