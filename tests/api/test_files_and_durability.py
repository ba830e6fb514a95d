"""Files holding conversation text are 0600; deleting a session leaves nothing of it; a new session of the same id
inherits no runs, journal or queue of an old one."""

from __future__ import annotations

import json
import stat

import pytest

from goose_api import create_app
from goose_api.storage import jsonl
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.live import free_port
from tests.support.mcp_fixtures import wait_until

pytestmark = pytest.mark.files_only  # file modes and the data dir's layout (PostgreSQL: tests/postgres)

NOT_CONVERSATION = ("auth_failures.sqlite3",)  # failed key checks per address (and its WAL files)
# Empty files (the lock files of filelock) hold nothing; every other file is checked.


def file_modes(root) -> dict[str, int]:
    return {path.relative_to(root).as_posix(): stat.S_IMODE(path.stat().st_mode)
            for path in root.rglob("*") if path.is_file() and path.stat().st_size}


def test_every_file_holding_conversation_text_is_0600(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, mode="approve"))
    client = ApiClient(app.test_client())
    try:
        fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo hi"}, id="c1")]),
                        Reply("Done."), Reply("queued done"), Reply("Summary."))
        hook = f"http://127.0.0.1:{free_port()}/nobody-listens"
        status, body, _ = client.post("/session/start", {"prompt": "secret plans", "session_id": "s1",
                                                         "webhook": hook}, headers={"Idempotency-Key": "k1"})
        assert body["status"] == "waiting_approval", body
        assert client.post("/session/reply", {"prompt": "more secrets", "session_id": "s1",
                                              "if_busy": "enqueue"})[0] == 202
        modes = file_modes(dirs["data"])
        assert any(name.endswith(("queue.jsonl", "queue.json")) for name in modes), modes
        assert client.post("/session/s1/confirm", {"id": "c1", "action": "allow_once"})[0] == 200
        wait_until(lambda: client.get("/session/s1")[1]["state"] == "idle", 30, "the queued turn")
        assert client.post("/session/summarize", {"session_id": "s1"})[0] == 200  # leaves a backup
    finally:
        app.extensions["goose_api"].close()
    modes |= file_modes(dirs["data"]) | file_modes(dirs["sessions"])
    assert any(name.endswith(".bak") for name in modes) and any(name.endswith(".events.jsonl") for name in modes)
    loose = {name: oct(mode) for name, mode in modes.items()
             if mode != 0o600 and not name.startswith(NOT_CONVERSATION)}
    assert loose == {}


def test_deleting_a_session_leaves_nothing_of_it(client, fake_openai, dirs):
    fake_openai.add(Reply("one"), Reply("Summary."), Reply("two"))
    assert client.post("/session/start", {"prompt": "x", "session_id": "gone"})[0] == 200
    assert client.post("/session/summarize", {"session_id": "gone"})[0] == 200
    assert client.post("/session/start", {"prompt": "y", "session_id": "gone2"})[0] == 200
    assert client.call("DELETE", "/session/gone")[0] == 200
    left = [p for root in (dirs["data"], dirs["sessions"]) for p in root.rglob("*")
            if p.name.startswith("gone") and not p.name.startswith("gone2")]
    assert left == []
    assert (dirs["sessions"] / "gone2.jsonl").exists(), "a session whose id starts alike is not touched"


def test_a_new_session_with_an_old_id_inherits_no_runs_journal_or_queue(client, fake_openai, dirs):
    """What an old session left in runs/<id>/ (its file deleted behind the server's back, by the goose CLI or a
    crash mid-delete) belongs to nobody: a new session of that id starts clean."""
    runs = dirs["data"] / "runs" / "reused"
    runs.mkdir(parents=True)
    (runs / "run.json").write_text(json.dumps({
        "version": 1, "session_id": "reused", "run_id": "run_00000000000000aa", "state": "interrupted",
        "prompt": "someone else's prompt", "pending_approvals": [], "decisions": {}, "last_error": {"x": 1},
        "owner": {}, "turn": "run_00000000000000aa"}))
    jsonl.append(runs / "journal.jsonl", {"turn": "run_00000000000000aa", "call": "c9", "step": "started"})
    jsonl.append(runs / "queue.jsonl", {"run_id": "run_00000000000000bb", "kind": "reply",
                                        "prompt": "someone else's queued prompt", "queued": 1})
    (runs / "run_00000000000000aa.events.jsonl").write_text('{"id":1,"type":"message","data":{},"time":1}\n')
    fake_openai.add(Reply("fresh"))
    status, body, _ = client.post("/session/start", {"prompt": "mine", "session_id": "reused"})
    assert (status, body["response"]) == (200, "fresh")
    shown = client.get("/session/reused")[1]
    assert (shown["state"], shown["last_error"], shown["queued_runs"]) == ("idle", None, [])
    assert [e for e in jsonl.read(runs / "journal.jsonl") if e.get("call") == "c9"] == []
    assert client.post("/session/reused/resume", {})[1]["error"] == "not_resumable"
    assert client.get("/session/reused/events?run_id=run_00000000000000aa")[0] == 404
    prompts = [m["content"][0]["text"] for m in shown["messages"] if m["role"] == "user"]
    assert prompts == ["mine"]
