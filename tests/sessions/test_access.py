"""SessionAccess: the one check of who may use a session, and sessions created with their owner."""

from __future__ import annotations

import pytest

from goose_api.auth import Client
from goose_api.conversation import Message
from goose_api.errors import BadRequest, NotFound, SessionNotFound
from goose_api.sessions.access import SessionAccess
from goose_api.sessions.owners import SessionOwners
from goose_api.sessions.store import SessionStore
from goose_api.storage.data_dir import DataDir

ALICE, BOB, ADMIN = Client("alice"), Client("bob"), Client("ops", admin=True)


@pytest.fixture
def access(tmp_path) -> SessionAccess:
    data = DataDir.at(tmp_path / "data", tmp_path / "sessions")
    return SessionAccess(SessionStore(data), SessionOwners(data.owners, data.owners_legacy))


def test_a_key_uses_its_own_sessions_and_an_admin_all(access, tmp_path):
    access.create("s1", str(tmp_path), "", ALICE)
    access.create("s2", str(tmp_path), "", BOB)
    access.store.create("cli", str(tmp_path))  # no owner: written by the goose CLI
    assert access.check("s1", ALICE) == "s1" and access.check("s2", ADMIN) == "s2" and access.check("cli", ADMIN)
    assert access.visible(["s2", "s1", "cli"], ALICE) == ["s1"]
    assert access.visible(["s2", "s1", "cli"], ADMIN) == ["s2", "s1", "cli"]


@pytest.mark.parametrize("session_id", ["s2", "cli", "missing"])
def test_what_a_key_may_not_use_is_not_found_whatever_the_reason(access, tmp_path, session_id):
    access.create("s2", str(tmp_path), "", BOB)
    access.store.create("cli", str(tmp_path))
    with pytest.raises(SessionNotFound) as info:
        access.check(session_id, ALICE)
    assert info.value.message == f"Session {session_id} not found; start one with POST /session/start"


def test_a_malformed_id_is_a_bad_request(access):
    with pytest.raises(BadRequest):
        access.check("a/b", ADMIN)


def test_resolve_names_a_checked_session_or_the_keys_newest(access, tmp_path):
    access.create("older", str(tmp_path), "", ALICE)
    access.create("bobs", str(tmp_path), "", BOB)
    assert access.resolve(None, ALICE) == "older"
    assert access.resolve("older", ALICE) == "older"
    with pytest.raises(SessionNotFound):
        access.resolve("bobs", ALICE)
    with pytest.raises(NotFound, match="no session to reply to"):
        access.resolve(None, Client("carol"))


def test_discard_undoes_a_creation_but_never_a_session_written_since(access, tmp_path):
    session = access.create("gone", str(tmp_path), "", ALICE)
    access.discard(session)
    assert not access.store.exists("gone") and access.owners.owner("gone") is None
    kept = access.create("kept", str(tmp_path), "", ALICE)
    other_worker = SessionStore(access.store.data)
    other_worker.append(other_worker.load("kept"), Message.user("mine"))  # another holder saved it meanwhile
    access.discard(kept)
    assert access.store.exists("kept") and access.owners.owner("kept") == "alice"


def test_delete_forgets_the_owner_with_the_file(access, tmp_path):
    access.create("s", str(tmp_path), "", ALICE)
    access.delete("s")
    assert not access.store.exists("s") and access.owners.owner("s") is None
    with pytest.raises(SessionNotFound):
        access.delete("s")
