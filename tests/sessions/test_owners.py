"""Several clients: named keys, session owners in a side index, admins, and what others see (404)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from goose_api import create_app
from goose_api.auth import Client
from goose_api.sessions.owners import SessionOwners
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session

DATA = Path(__file__).resolve().parents[1] / "data"
KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"},
        {"name": "ops", "key": "ops-key", "admin": True})


@pytest.fixture
def team(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS))
    yield {name: ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob", "ops")} | {
        "default": ApiClient(app.test_client())}
    app.extensions["goose_api"].close()


def test_owner_is_recorded_beside_the_goose_file(team, fake_openai, dirs):
    fake_openai.add(Reply("hi"))
    assert team["alice"].post("/session/start", {"prompt": "x", "session_id": "a1"})[0] == 200
    lines = (dirs["data"] / "owners.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"session": "a1", "owner": "alice"}]
    meta, _ = assert_goose_session(dirs["sessions"] / "a1.jsonl")  # the goose file stays goose's
    assert "alice" not in (dirs["sessions"] / "a1.jsonl").read_text() and "owner" not in meta


@pytest.mark.slow
def test_a_key_replies_only_to_its_own_sessions(team, fake_openai, dirs):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    team["bob"].post("/session/start", {"prompt": "y", "session_id": "bobs"})
    status, body, _ = team["bob"].post("/session/reply", {"prompt": "peek", "session_id": "alices"})
    assert (status, body["error"]) == (404, "not_found")
    missing = team["bob"].post("/session/reply", {"prompt": "peek", "session_id": "nosuch"})[1]
    assert body["message"].replace("alices", "X") == missing["message"].replace("nosuch", "X")
    status, body, _ = team["alice"].post("/session/reply", {"prompt": "mine", "session_id": "alices"})
    assert (status, body["response"]) == (200, "c")
    assert len(assert_goose_session(dirs["sessions"] / "alices.jsonl")[1]) == 4
    assert len(assert_goose_session(dirs["sessions"] / "bobs.jsonl")[1]) == 2


def test_reply_without_id_takes_the_keys_own_latest_session(team, fake_openai):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    team["bob"].post("/session/start", {"prompt": "y", "session_id": "bobs"})  # the newest overall
    status, body, _ = team["alice"].post("/session/reply", {"prompt": "again"})
    assert (status, body["session_id"]) == (200, "alices")


@pytest.mark.slow
def test_a_key_with_no_sessions_has_nothing_to_reply_to(team, fake_openai):
    fake_openai.add(Reply("a"))
    team["alice"].post("/session/start", {"prompt": "x"})
    status, body, _ = team["bob"].post("/session/reply", {"prompt": "hello?"})
    assert (status, body["error"]) == (404, "not_found")


@pytest.mark.slow
def test_admin_keys_see_every_session(team, fake_openai):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    team["alice"].post("/session/start", {"prompt": "x", "session_id": "alices"})
    assert team["ops"].post("/session/reply", {"prompt": "admin", "session_id": "alices"})[0] == 200
    assert team["default"].post("/session/reply", {"prompt": "api_key", "session_id": "alices"})[0] == 200


@pytest.mark.slow
def test_sessions_without_an_owner_are_for_admins_only(team, fake_openai, dirs):
    shutil.copy(DATA / "goose_cli_session.jsonl", dirs["sessions"] / "from_cli.jsonl")
    assert team["alice"].post("/session/reply", {"prompt": "x", "session_id": "from_cli"})[0] == 404
    fake_openai.add(Reply("ok"))
    assert team["ops"].post("/session/reply", {"prompt": "x", "session_id": "from_cli"})[0] == 200


def test_a_wrong_key_is_401_whoever_owns_what(team):
    assert ApiClient(team["alice"].flask, "alice-key-wrong").post("/session/reply", {"prompt": "x"})[0] == 401


def test_owners_api(tmp_path):
    owners = SessionOwners(tmp_path)
    alice, bob, admin = Client("alice"), Client("bob"), Client("ops", admin=True)
    owners.claim("s1", alice)
    owners.claim("s2", bob)
    assert owners.visible(["s2", "s1", "cli"], alice) == ["s1"]
    assert owners.visible(["s2", "s1", "cli"], admin) == ["s2", "s1", "cli"]
    assert owners.resolve(None, bob, lambda: ["s1", "s2"]) == "s2"
    with pytest.raises(Exception, match="not found"):
        owners.check("s2", alice)
    other_worker = SessionOwners(tmp_path)  # another process reading the same index
    other_worker.forget("s1")
    assert owners.owner("s1") is None and owners.owner("s2") == "bob"


def _claim_many(data_dir, prefix, count):
    owners = SessionOwners(data_dir)
    for n in range(count):
        owners.claim(f"{prefix}{n}", Client(prefix))


def test_claims_from_many_workers_at_once_are_all_kept_and_seen(tmp_path):
    import multiprocessing
    reader = SessionOwners(tmp_path)
    assert reader.owner("w0-0") is None
    workers = [multiprocessing.get_context("fork").Process(target=_claim_many, args=(tmp_path, f"w{n}-", 40))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert all(reader.owner(f"w{n}-{i}") == f"w{n}-" for n in range(4) for i in range(40))
    reader.forget("w1-3")
    assert SessionOwners(tmp_path).owner("w1-3") is None and reader.owner("w1-3") is None


def test_a_line_still_being_written_waits_and_an_older_index_is_read_first(tmp_path):
    (tmp_path / "owners.json").write_text(json.dumps({"old": "carol"}))
    owners = SessionOwners(tmp_path)
    assert owners.owner("old") == "carol"
    with open(tmp_path / "owners.jsonl", "ab") as log:
        log.write(b'{"session": "new", "own')  # a worker is in the middle of its write
        log.flush()
        assert owners.owner("new") is None
        log.write(b'er": "dave"}\n')
    assert owners.owner("new") == "dave" and owners.owner("old") == "carol"
