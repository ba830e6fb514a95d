"""Append-only files torn by a crash mid-append: every one of them at once, and the session still answers,
replies, runs its queued turn and keeps its owner (and a session claimed after the tear keeps its own)."""

from __future__ import annotations

import json

import pytest

from goose_api import create_app
from goose_api.storage import jsonl
from tests.api.test_ownership import KEYS
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session
from tests.support.mcp_fixtures import wait_until
from tests.support.sse_reader import parse_text

pytestmark = pytest.mark.files_only  # the file backend's append-only files (PostgreSQL commits rows whole)

FRAGMENT = b'{"torn": "a line a crash cut sh'  # no newline: the append never finished


@pytest.fixture
def team(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS, mode="approve"))
    yield {name: ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob", "ops")}
    app.extensions["goose_api"].close()


def tear(path) -> None:
    assert path.is_file(), path
    with open(path, "ab") as fh:
        fh.write(FRAGMENT)


def test_every_append_only_file_torn_and_the_session_goes_on(team, fake_openai, dirs):
    alice, bob = team["alice"], team["bob"]
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo one"}, id="c1")]))
    status, body, _ = alice.post("/session/start", {"prompt": "run it", "session_id": "torn"})
    assert (status, body["status"]) == (200, "waiting_approval"), body
    first_run = body["run_id"]
    status, queued, _ = alice.post("/session/reply", {"prompt": "queued", "session_id": "torn", "if_busy": "enqueue"})
    assert status == 202, queued
    runs = dirs["data"] / "runs" / "torn"
    for path in (runs / f"{first_run}.events.jsonl", runs / "journal.jsonl", runs / "queue.jsonl",
                 dirs["data"] / "owners.jsonl"):
        tear(path)

    shown = alice.get("/session/torn")[1]
    assert (shown["state"], [q["run_id"] for q in shown["queued_runs"]]) == ("waiting_approval", [queued["run_id"]])
    assert bob.get("/session/torn")[0] == 404, "the session is still alice's alone"

    fake_openai.add(Reply("bob's answer"))
    assert bob.post("/session/start", {"prompt": "mine", "session_id": "b1"})[0] == 200
    assert bob.get("/session/b1")[0] == 200 and alice.get("/session/b1")[0] == 404, \
        "the owner claimed after the torn line landed whole"

    fake_openai.add(Reply("one done"), Reply("queued answer"))
    status, done, _ = alice.post("/session/torn/confirm", {"id": "c1", "action": "allow_once"})
    assert (status, done["response"]) == (200, "one done"), done  # the run's events after the torn line are read
    wait_until(lambda: alice.get("/session/torn")[1]["state"] == "idle"
               and not alice.get("/session/torn")[1]["queued_runs"], 30, "the queued turn to run")
    events = parse_text(alice.get(f"/session/torn/events?run_id={first_run}")[2].get_data(as_text=True)).events
    assert [e.type for e in events][-1] == "done" and "approval_required" in [e.type for e in events]

    fake_openai.add(Reply("still here"))
    status, body, _ = alice.post("/session/reply", {"prompt": "again", "session_id": "torn"})
    assert (status, body["response"]) == (200, "still here")
    _, messages = assert_goose_session(dirs["sessions"] / "torn.jsonl")
    texts = [item.get("text") for m in messages for item in m["content"] if item["type"] == "text"]
    assert texts[-4:] == ["queued", "queued answer", "again", "still here"]
    steps = [(e["call"], e["step"]) for e in jsonl.read(runs / "journal.jsonl") if e.get("call")]
    assert ("c1", "finished") in steps, "the journal's entries after the torn line were written whole"
    owners = [json.loads(line) for line in (dirs["data"] / "owners.jsonl").read_bytes().splitlines()[-1:]]
    assert owners == [{"session": "b1", "owner": "bob"}]


def test_a_torn_last_message_of_a_session_file_is_left_out_not_a_500(client, fake_openai, dirs):
    fake_openai.add(Reply("first"), Reply("second"))
    assert client.post("/session/start", {"prompt": "x", "session_id": "cut"})[0] == 200
    tear(dirs["sessions"] / "cut.jsonl")
    status, body, _ = client.get("/session/cut")
    assert (status, body["message_count"]) == (200, 2)
    status, body, _ = client.post("/session/reply", {"prompt": "y", "session_id": "cut"})
    assert (status, body["response"]) == (200, "second")
    assert len(assert_goose_session(dirs["sessions"] / "cut.jsonl")[1]) == 4
