"""The PostgreSQL session store: messages are rows (a save inserts, never rewrites), and turn locks are leases."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from psycopg.types.json import Jsonb

from goose_api.conversation import Message
from goose_api.errors import Conflict, SessionBusy, SessionNotFound
from goose_api.postgres.db import Database
from goose_api.postgres.sessions import PgOwners, PgSessionLocks, PgSessionStore
from goose_api.sessions.store import parse_jsonl
from goose_api.storage import process


@pytest.fixture
def db(database_url):
    database = Database(database_url).open()
    yield database
    database.close()


@pytest.fixture
def store(db):
    locks = PgSessionLocks(db, lease=30.0)
    yield PgSessionStore(db, locks)
    locks.close()


def text(role: str, words: str) -> Message:
    return Message.from_json({"role": role, "created": 1700000000, "content": [{"type": "text", "text": words}]})


def row_versions(db: Database, session_id: str) -> list[tuple[int, str]]:
    """(position, the row's xmin: the transaction that last wrote it)."""
    return db.fetchall("SELECT position, xmin::text FROM messages WHERE session_id = %s ORDER BY position",
                       (session_id,))


def test_saving_a_message_inserts_a_row_and_leaves_the_others_alone(store, db):
    session = store.create("rows", "/work", "rows test")
    store.append(session, text("user", "one"), text("assistant", "two"))
    before = row_versions(db, "rows")
    store.append(session, text("user", "three"))
    after = row_versions(db, "rows")
    assert after[:2] == before, "the earlier messages were not rewritten"
    assert [position for position, _ in after] == [0, 1, 2]
    assert store.read_metadata("rows")["message_count"] == 3


def test_another_process_sees_a_save_and_the_export_is_goose_jsonl(store, db):
    session = store.create("shared", "/work", "shared one")
    store.append(session, text("user", "hello"))
    other = PgSessionStore(db, store.locks)  # another process's store: its own cache
    assert [m.text() for m in other.load("shared").messages] == ["hello"]
    store.append(session, text("assistant", "hi"))
    loaded = other.load("shared")
    assert [m.text() for m in loaded.messages] == ["hello", "hi"]
    metadata, messages = parse_jsonl(other.file_bytes(loaded).decode())
    assert list(metadata)[:4] == ["working_dir", "description", "schedule_id", "message_count"]
    assert metadata["message_count"] == 2 and [m["content"][0]["text"] for m in messages] == ["hello", "hi"]
    assert list(messages[0]) == ["role", "created", "content"]


def test_ids_are_claimed_once_and_deleted_sessions_are_gone(store):
    store.create("taken", "/w")
    with pytest.raises(Conflict):
        store.create("taken", "/w")
    generated = {store.create(None, "/w").id for _ in range(3)}
    assert len(generated) == 3
    store.delete("taken")
    with pytest.raises(SessionNotFound):
        store.load("taken")
    assert [sid for sid, _ in store.list_ids()] and "taken" not in dict(store.list_ids())


def test_discard_keeps_a_session_someone_saved_meanwhile(store, db):
    session = store.create("raced", "/w")
    other = PgSessionStore(db, store.locks)
    other.append(other.load("raced"), text("user", "mine now"))
    assert store.discard(session) is False and store.exists("raced")
    fresh = store.create("fresh", "/w")
    assert store.discard(fresh) is True and not store.exists("fresh")


def test_a_turn_lock_excludes_another_holder_until_released(store):
    store.create("locked", "/w")
    held = store.acquire("locked")
    with pytest.raises(SessionBusy):
        store.acquire("locked")
    held.release()
    store.acquire("locked").release()


def test_a_lock_of_a_dead_process_is_taken_over_at_once(store, db):
    store.create("orphan", "/w")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {**process.identity(), "pid": int(dead.stdout), "started": None}
    db.execute("INSERT INTO session_locks (session_id, token, holder, heartbeat) VALUES ('orphan', 't', %s, %s)",
               (Jsonb(holder), time.time()))
    store.acquire("orphan").release()


def test_a_lock_of_another_host_holds_until_its_lease_runs_out(db):
    locks = PgSessionLocks(db, lease=30.0)
    store = PgSessionStore(db, locks)
    store.create("remote", "/w")
    holder = {"pid": 1, "started": 1, "host": "another-host"}
    db.execute("INSERT INTO session_locks (session_id, token, holder, heartbeat) VALUES ('remote', 't', %s, %s)",
               (Jsonb(holder), time.time()))
    with pytest.raises(SessionBusy):
        store.acquire("remote")
    db.execute("UPDATE session_locks SET heartbeat = heartbeat - 31 WHERE session_id = 'remote'")
    store.acquire("remote").release()
    locks.close()


def test_owners_are_rows(db):
    owners = PgOwners(db)
    owners.claim("s1", "alice")
    owners.claim("s2", "bob")
    assert owners.owner("s1") == "alice" and dict(owners.current()) == {"s1": "alice", "s2": "bob"}
    owners.forget("s1")
    assert owners.owner("s1") is None


def test_nul_characters_jsonb_cannot_hold_are_kept_as_replacement_characters(store, db):
    session = store.create("nul", "/w", "a\0b")
    message = text("user", "binary \0 output")
    store.append(session, message)
    assert message.text() == "binary \ufffd output", "the saved message reads as it will load"
    loaded = PgSessionStore(db, store.locks).load("nul")
    assert loaded.messages[0].text() == "binary \ufffd output" and loaded.metadata["description"] == "a\ufffdb"
