"""goose's SQLite session store (``sessions.db``): write our sessions into it, read them out of it.

goose 1.10 moved its sessions from one JSONL file each (the format this server
writes) into ``~/.local/share/goose/sessions/sessions.db``. The layout here is
the one goose created first (its schema version 1, from
``crates/goose/src/session/session_manager.rs``):

- ``schema_version(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)``, one row: 1
- ``sessions(id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', working_dir TEXT NOT NULL,
  created_at TIMESTAMP, updated_at TIMESTAMP, extension_data TEXT DEFAULT '{}', total_tokens,
  input_tokens, output_tokens, accumulated_total_tokens, accumulated_input_tokens,
  accumulated_output_tokens INTEGER, schedule_id TEXT, recipe_json TEXT)``
- ``messages(id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id),
  role TEXT NOT NULL, content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER)``; ``content_json`` is the
  message's goose ``content`` list; goose reads a session's messages ``ORDER BY timestamp``.

Later goose versions open such a file and migrate it forward themselves (each
migration adds columns or tables: ``user_recipe_values_json``, ``metadata_json``,
``name``/``user_set_name``, ``session_type``, ...). Writing into an existing
``sessions.db`` of any version fills the version-1 columns plus ``name`` and
``message_id`` where they exist; the other later columns have defaults.

Reading a file someone sent (``POST /sessions/import``) is bounded: a file
over ``max_bytes`` is refused unopened; one whose ``sessions`` or
``messages`` is not a plain table (a view, a virtual table) or has generated
or hidden columns is refused before a row is read: those compute on every
read (a 16 KB file whose generated column calls ``printf`` made a 1 GB
string). Triggers on them are refused too: the file is opened read-only and
immutable, so none could fire, but goose makes none there, and a file that
has one was made to be something else. Reading then runs under a step budget (progress handler), a cap on any string
or blob (``SQLITE_LIMIT_LENGTH``) and SQLite's heap limit.

``python -m goose_api.sessions.goose_db export --db PATH SESSION.jsonl...`` copies session
files into a sessions.db (made if missing); ``import --db PATH --id ID OUT.jsonl``
writes one of its sessions as a goose JSONL file.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goose_api.conversation import ACCUMULATED_FIELDS, TOKEN_FIELDS
from goose_api.sessions.store import new_metadata, read_jsonl_file, to_jsonl
from goose_api.storage import bounded_json

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', working_dir TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    extension_data TEXT DEFAULT '{}', total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
    accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER,
    schedule_id TEXT, recipe_json TEXT);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL REFERENCES sessions(id), role TEXT NOT NULL,
    content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL, timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    tokens INTEGER);
CREATE INDEX idx_messages_session ON messages(session_id);
CREATE INDEX idx_messages_timestamp ON messages(timestamp);
CREATE INDEX idx_sessions_updated ON sessions(updated_at DESC);
"""
TOKEN_COLUMNS = TOKEN_FIELDS + ACCUMULATED_FIELDS
MAX_STEPS = 50_000_000  # SQLite VM steps a read may take: a hostile file cannot keep a request busy
MAX_BYTES = 32 * 1024 * 1024  # the default size cap of a file to read (and of any value in it)
HEAP_LIMIT = 256 * 1024 * 1024  # SQLite's heap in this process (PRAGMA hard_heap_limit: it only ever lowers)
READ_TABLES = ("sessions", "messages")


class GooseDbError(ValueError):
    """The file is not a goose sessions.db we can read, or lacks the session."""


@dataclass
class DbSession:
    """One session as goose's JSONL file has it: metadata (line 1) and message dicts."""

    id: str
    metadata: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)


def _stamp(seconds: float, millis: int | None = None) -> str:
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return text if millis is None else f"{text}.{millis:03d}"


def create(path: Path) -> None:
    """A new, empty sessions.db at schema version 1."""
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        conn.commit()


def write(path: Path, session: DbSession) -> None:
    """Insert ``session`` into the sessions.db at ``path`` (made if missing).

    Raises:
        GooseDbError: the file is not a sessions.db, or already has a session with that id.
    """
    if not Path(path).exists():
        create(path)
    with closing(sqlite3.connect(path)) as conn:
        columns = _columns(conn, "sessions")
        if {"id", "working_dir"} - columns or {"session_id", "content_json"} - _columns(conn, "messages"):
            raise GooseDbError(f"{path} is not a goose sessions.db")
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session.id,)).fetchone():
            raise GooseDbError(f"{path} already has a session {session.id}")
        meta = session.metadata
        row = {"id": session.id, "description": meta.get("description") or "", "working_dir": meta.get("working_dir")
               or "", "created_at": _stamp(session.created), "updated_at": _stamp(session.updated),
               "extension_data": "{}", "schedule_id": meta.get("schedule_id"),
               **{key: meta.get(key) for key in TOKEN_COLUMNS}}
        if "name" in columns:
            row["name"] = row["description"]
        conn.execute(f"INSERT INTO sessions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                     tuple(row.values()))
        first = session.messages[0]["created"] if session.messages else int(session.created)
        for n, message in enumerate(session.messages):  # strictly increasing timestamps keep goose's order
            conn.execute("INSERT INTO messages (session_id, role, content_json, created_timestamp, timestamp) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (session.id, message["role"], json.dumps(message["content"], ensure_ascii=False),
                          message["created"], _stamp(first + n // 1000, n % 1000)))
        if "message_id" in _columns(conn, "messages"):
            conn.execute("UPDATE messages SET message_id = 'msg_' || session_id || '_' || id "
                         "WHERE session_id = ? AND message_id IS NULL", (session.id,))
        conn.commit()


def read(path: Path, session_id: str | None = None, max_bytes: int = MAX_BYTES,
         max_messages: int | None = None) -> DbSession:
    """One session out of a sessions.db (``session_id`` may be omitted when it holds exactly one).

    Raises:
        GooseDbError: not a readable sessions.db, over ``max_bytes``, a schema that computes on read
            (see the module's doc), or no such session (or several and none named).
    """
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise GooseDbError(f"the file has {size} bytes, more than the {max_bytes} allowed")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise GooseDbError(f"cannot open the database: {exc}") from None
    steps = [0]

    def budget() -> int:
        steps[0] += 1000
        return 1 if steps[0] > MAX_STEPS else 0
    conn.set_progress_handler(budget, 1000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_bytes)
    try:
        with closing(conn):
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute(f"PRAGMA soft_heap_limit = {HEAP_LIMIT}")
            conn.execute(f"PRAGMA hard_heap_limit = {HEAP_LIMIT}")
            _check_schema(conn)
            return _read(conn, session_id, max_messages)
    except sqlite3.Error as exc:
        raise GooseDbError(f"not a goose sessions.db: {exc}") from None


def _check_schema(conn: sqlite3.Connection) -> None:
    """Refuse tables that would run code on read (views, virtual tables, generated columns), or have triggers."""
    kinds = {name: (kind, sql or "") for kind, name, sql in
             conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name IN (?, ?)", READ_TABLES)}
    for table in READ_TABLES:
        kind, sql = kinds.get(table, (None, ""))
        if kind is None:
            raise GooseDbError("not a goose sessions.db: it has no sessions and messages tables")
        if kind != "table" or sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            raise GooseDbError(f"refused: {table} is a {kind if kind != 'table' else 'virtual table'}, "
                               "not a plain table")
        if any(column[6] for column in conn.execute(f"PRAGMA table_xinfo({table})")):
            raise GooseDbError(f"refused: {table} has generated or hidden columns")
    triggers = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (?, ?)", READ_TABLES)]
    if triggers:
        raise GooseDbError(f"refused: the sessions or messages table has triggers ({', '.join(triggers[:3])})")


def _read(conn: sqlite3.Connection, session_id: str | None, max_messages: int | None) -> DbSession:
    conn.row_factory = sqlite3.Row
    if session_id is None:
        ids = [row["id"] for row in conn.execute("SELECT id FROM sessions LIMIT 2")]
        if len(ids) != 1:
            raise GooseDbError(f"the database holds {'no' if not ids else 'several'} sessions: name one with "
                               "source_id")
        session_id = ids[0]
    row = conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise GooseDbError(f"the database has no session {session_id!r}")
    keys = row.keys()
    name = row["name"] if "name" in keys and row["name"] else ""
    metadata = {"working_dir": row["working_dir"] or "", "description": name or row["description"] or "",
                "schedule_id": row["schedule_id"] if "schedule_id" in keys else None,
                **{key: row[key] if key in keys else None for key in TOKEN_COLUMNS}}
    limit = -1 if max_messages is None else max_messages + 1
    messages = [{"role": r["role"], "created": r["created_timestamp"],
                 "content": bounded_json.loads(r["content_json"])}
                for r in conn.execute("SELECT role, content_json, created_timestamp FROM messages "
                                      "WHERE session_id = ? ORDER BY timestamp, id LIMIT ?", (session_id, limit))]
    if max_messages is not None and len(messages) > max_messages:
        raise GooseDbError(f"the session has more than {max_messages} messages, the most an import may have")
    return DbSession(session_id, metadata, messages)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def to_bytes(session: DbSession, scratch: Path) -> bytes:
    """A one-session sessions.db as bytes (built in the ``scratch`` directory)."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="export-") as folder:
        path = Path(folder, "sessions.db")
        write(path, session)
        return path.read_bytes()


def goose_metadata(session: DbSession) -> dict[str, Any]:
    """The session's metadata line: goose's keys in goose's order."""
    meta = new_metadata(session.metadata.get("working_dir") or "", session.metadata.get("description") or "")
    meta.update({key: session.metadata.get(key) for key in ("schedule_id", *TOKEN_COLUMNS)},
                message_count=len(session.messages))
    return meta


def _from_file(path: Path) -> DbSession:
    """A goose JSONL file as a sessions.db row (read by the session store's parser)."""
    metadata, messages = read_jsonl_file(path)
    if not isinstance(metadata, dict):
        raise GooseDbError(f"{path}: line 1 is not a goose metadata object")
    modified = path.stat().st_mtime
    return DbSession(path.stem, metadata, messages, modified, modified)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goose_api.sessions.goose_db", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    out = sub.add_parser("export", help="copy goose JSONL session files into a sessions.db")
    out.add_argument("--db", required=True, type=Path)
    out.add_argument("files", nargs="+", type=Path)
    into = sub.add_parser("import", help="write one session of a sessions.db as a goose JSONL file")
    into.add_argument("--db", required=True, type=Path)
    into.add_argument("--id", help="the session's id in the database (optional when it holds one)")
    into.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            for path in args.files:
                write(args.db, _from_file(path))
                print(f"{path.stem} -> {args.db}")
        else:
            session = read(args.db, args.id)
            args.out.write_text(to_jsonl(goose_metadata(session), session.messages), encoding="utf-8")
            print(f"{session.id} -> {args.out}")
    except (GooseDbError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
