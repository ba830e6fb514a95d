"""The pool's transactions: one per thread, nested ones join it; durability as the file backend's."""

from __future__ import annotations

import threading

import pytest

from goose_api.errors import ConfigurationError
from goose_api.postgres.db import Database, check_url, jsonb, redacted


@pytest.fixture
def db(database_url):
    database = Database(database_url).open()
    yield database
    database.close()


def setting(db: Database) -> str:
    return db.fetchone("SHOW synchronous_commit")[0]


def test_only_durable_writes_wait_for_the_disk(db):
    assert setting(db) == "off", "run records, events and leases commit without waiting (as files skip fsync)"
    with db.transaction(durable=True):
        assert setting(db) == "on"
    with db.transaction():
        with db.transaction(durable=True):  # a durable write inside a lock makes the whole transaction durable
            pass
        assert setting(db) == "on"
    assert setting(db) == "off"


def test_a_transaction_belongs_to_its_thread_and_rolls_back_whole(db):
    seen_outside = []
    with pytest.raises(RuntimeError):
        with db.transaction(lock="t"):
            db.execute("INSERT INTO kv (name, value) VALUES ('a', '1')")
            other = threading.Thread(target=lambda: seen_outside.append(
                db.fetchone("SELECT count(*) FROM kv WHERE name = 'a'")[0]))
            other.start()
            other.join()
            raise RuntimeError("a failure inside the lock")
    assert seen_outside == [0], "another thread does not see an uncommitted write"
    assert db.fetchone("SELECT count(*) FROM kv WHERE name = 'a'")[0] == 0, "rolled back"


def test_urls_are_checked_and_never_shown_with_their_password():
    assert check_url("postgres://u:p@h:5/d") == "postgresql://u:p@h:5/d"
    assert redacted("postgresql://u:secret@h:5/d") == "postgresql://u@h:5/d"
    for bad in ("mysql://u@h/d", "postgres://", "not a url"):
        with pytest.raises(ConfigurationError, match="DATABASE_URL"):
            check_url(bad)


def test_nul_characters_jsonb_cannot_hold_are_replaced_in_any_value(db):
    db.execute("INSERT INTO kv (name, value) VALUES ('nul', %s)",
               (jsonb({"out\0": ["a\0b", {"k": "\0"}], "n": 1}),))
    assert db.fetchone("SELECT value FROM kv WHERE name = 'nul'")[0] == {
        "out\ufffd": ["a\ufffdb", {"k": "\ufffd"}], "n": 1}
