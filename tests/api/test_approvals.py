"""Tool approval modes (auto, approve, smart_approve, chat) and the confirm actions, through the HTTP API."""

from __future__ import annotations

import json

import pytest

from goose_api import create_app
from goose_api.conversation import CHAT_MODE_TEXT, DECLINED_TEXT
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file

MEMORY = {"memory": {"enabled": True, "type": "builtin", "name": "memory"}}


@pytest.fixture
def make_client(fake_openai, dirs):
    apps = []

    def build(mode: str, **overrides) -> ApiClient:
        app = create_app(settings_for(fake_openai, dirs, mode=mode, **overrides))
        apps.append(app)
        return ApiClient(app.test_client())

    yield build
    for app in apps:
        app.extensions["goose_api"].close()


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def tool_result(body: dict, call_id: str) -> dict:
    for message in body["messages"]:
        for item in message["content"]:
            if item["type"] == "toolResponse" and item["id"] == call_id:
                return item["toolResult"]
    raise AssertionError(f"no toolResponse {call_id} in {body['messages']}")


@pytest.mark.slow
def test_approve_mode_waits_and_allow_once_runs_the_tool(make_client, fake_openai, dirs):
    client = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("echo approved", "call_1")]), Reply("It printed approved."))
    status, body, _ = client.post("/session/start", {"prompt": "print", "session_id": "ask"})
    assert status == 200, body
    assert body["status"] == "waiting_approval" and body["response"] == ""
    assert body["pending_approvals"][0] | {"requested": 0} == {
        "id": "call_1", "tool": "developer__shell", "arguments": {"command": "echo approved"}, "requested": 0}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert body["usage"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert "/session/ask/confirm" in body["message"]
    shown = client.get("/session/ask")[1]
    assert shown["state"] == "waiting_approval" and shown["pending_approvals"] == body["pending_approvals"]
    status, done, _ = client.post("/session/ask/confirm", {"id": "call_1", "action": "allow_once"})
    assert status == 200, done
    assert (done["status"], done["response"]) == ("success", "It printed approved.")
    assert "approved" in tool_result(done, "call_1")["value"][0]["text"]
    assert done["message"] == "Session started with prompt: print"
    assert client.get("/session/ask")[1]["state"] == "idle"
    assert_goose_session(goose_file(dirs, "ask"))
    fake_openai.add(Reply("", tool_calls=[shell("echo again", "call_2")]))
    status, body, _ = client.post("/session/reply", {"prompt": "again", "session_id": "ask"})
    assert body["status"] == "waiting_approval", "allow_once is for one call only"
    fake_openai.add(Reply("stopped"))
    client.post("/session/ask/confirm", {"id": "call_2", "action": "deny"})


@pytest.mark.slow
def test_deny_answers_the_model_with_goose_declined_text(make_client, fake_openai, dirs):
    client = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("rm -rf /tmp/x", "call_d")]), Reply("I will not do that."))
    client.post("/session/start", {"prompt": "delete", "session_id": "deny"})
    status, done, _ = client.post("/session/deny/confirm", {"id": "call_d", "action": "deny"})
    assert status == 200, done
    assert tool_result(done, "call_d") == {"status": "success", "value": [{"type": "text", "text": DECLINED_TEXT}]}
    sent = fake_openai.requests[-1].body["messages"]
    assert [m for m in sent if m["role"] == "tool"][0]["content"] in (DECLINED_TEXT, [{"type": "text",
                                                                                       "text": DECLINED_TEXT}])
    assert_goose_session(goose_file(dirs, "deny"))


@pytest.mark.slow
def test_always_allow_is_remembered_per_tool_in_every_worker(make_client, fake_openai, dirs):
    client = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("echo one", "c1")]), Reply("one"))
    client.post("/session/start", {"prompt": "1", "session_id": "always"})
    status, done, _ = client.post("/session/always/confirm", {"id": "c1", "action": "always_allow"})
    assert (status, done["response"]) == (200, "one")
    if not dirs.get("database_url"):  # the file backend's permissions.json (the next lines check every backend)
        assert json.loads((dirs["data"] / "permissions.json").read_text()) == {
            "keys": {"default": ["developer__shell"]}}
    other_worker = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("echo two", "c2")]), Reply("two"))
    status, body, _ = other_worker.post("/session/reply", {"prompt": "2", "session_id": "always"})
    assert (status, body["status"], body["response"]) == (200, "success", "two"), body
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__text_editor",
                                                   {"command": "view", "path": str(dirs["work"])}, id="c3")]))
    status, body, _ = other_worker.post("/session/reply", {"prompt": "3", "session_id": "always"})
    assert body["status"] == "waiting_approval", "always_allow covers that tool only"
    fake_openai.add(Reply("fine"))
    other_worker.post("/session/always/confirm", {"id": "c3", "action": "deny"})


KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})


def test_always_allow_is_remembered_for_the_key_that_chose_it_only(make_client, fake_openai, dirs):
    alice = make_client("approve", api_keys=KEYS)
    bob = ApiClient(alice.flask, "bob-key")
    alice.key = "alice-key"
    fake_openai.add(Reply("", tool_calls=[shell("echo a", "a1")]), Reply("a"))
    alice.post("/session/start", {"prompt": "1", "session_id": "alices"})
    assert alice.post("/session/alices/confirm", {"id": "a1", "action": "always_allow"})[1]["response"] == "a"
    if not dirs.get("database_url"):  # the file backend's permissions.json (the rest checks every backend)
        assert json.loads((dirs["data"] / "permissions.json").read_text()) == {
            "keys": {"alice": ["developer__shell"]}}
    fake_openai.add(Reply("", tool_calls=[shell("touch bobs-file", "b1")]))
    status, body, _ = bob.post("/session/start", {"prompt": "2", "session_id": "bobs"})
    assert (status, body["status"]) == (200, "waiting_approval"), "alice's choice is not bob's"
    assert not (dirs["work"] / "bobs-file").exists()
    fake_openai.add(Reply("no"))
    bob.post("/session/bobs/confirm", {"id": "b1", "action": "deny"})
    fake_openai.add(Reply("", tool_calls=[shell("echo again", "a2")]), Reply("again"))
    status, body, _ = make_client("approve", api_keys=KEYS).call(
        "POST", "/session/start", {"prompt": "3", "session_id": "alices2"}, headers={"x-api-key": "alice-key"})
    assert (status, body["status"], body["response"]) == (200, "success", "again"), "alice's choice holds for her"


@pytest.mark.files_only  # an earlier version's permissions.json (PostgreSQL: moved in by migrate --from-files)
def test_the_global_list_of_an_earlier_version_is_the_default_keys(make_client, fake_openai, dirs):
    (dirs["data"] / "permissions.json").write_text(json.dumps({"always_allow": ["developer__shell"]}))
    default = make_client("approve", api_keys=KEYS)
    alice = ApiClient(default.flask, "alice-key")
    fake_openai.add(Reply("", tool_calls=[shell("echo d", "d1")]), Reply("ran"))
    assert default.post("/session/start", {"prompt": "1", "session_id": "d"})[1]["response"] == "ran"
    fake_openai.add(Reply("", tool_calls=[shell("echo a", "a1")]))
    assert alice.post("/session/start", {"prompt": "1", "session_id": "a"})[1]["status"] == "waiting_approval"
    fake_openai.add(Reply("no"))
    alice.post("/session/a/confirm", {"id": "a1", "action": "deny"})


@pytest.mark.slow
def test_smart_approve_runs_read_only_tools_and_asks_for_the_rest(make_client, fake_openai, dirs):
    client = make_client("smart_approve", extensions=MEMORY)
    fake_openai.add(Reply("", tool_calls=[ToolCall("memory__retrieve_memories",
                                                   {"category": "*", "is_global": False}, id="read"),
                                          shell("touch written", "write")]),
                    Reply("done"))
    status, body, _ = client.post("/session/start", {"prompt": "look then write", "session_id": "smart"})
    assert body["status"] == "waiting_approval", body
    assert [p["id"] for p in body["pending_approvals"]] == ["write"]
    assert not (dirs["work"] / "written").exists()
    status, done, _ = client.post("/session/smart/confirm", {"id": "write", "action": "allow_once"})
    assert (status, done["status"]) == (200, "success"), done
    assert tool_result(done, "read")["status"] == "success"
    assert (dirs["work"] / "written").exists()
    assert_goose_session(goose_file(dirs, "smart"))


@pytest.mark.slow
def test_chat_mode_offers_no_tools_and_skips_any_call(make_client, fake_openai, dirs):
    client = make_client("chat")
    fake_openai.add(Reply("", tool_calls=[shell("touch nope", "call_c")]), Reply("Here is the plan instead."))
    status, body, _ = client.post("/session/start", {"prompt": "do it", "session_id": "chat"})
    assert (status, body["status"]) == (200, "success"), body
    assert "tools" not in fake_openai.requests[0].body
    assert tool_result(body, "call_c") == {"status": "success", "value": [{"type": "text", "text": CHAT_MODE_TEXT}]}
    assert not (dirs["work"] / "nope").exists()
    assert_goose_session(goose_file(dirs, "chat"))


@pytest.mark.slow
def test_auto_mode_runs_tools_without_asking(make_client, fake_openai, dirs):
    client = make_client("auto")
    fake_openai.add(Reply("", tool_calls=[shell("touch made", "call_a")]), Reply("made it"))
    status, body, _ = client.post("/session/start", {"prompt": "make", "session_id": "auto"})
    assert (status, body["status"]) == (200, "success")
    assert (dirs["work"] / "made").exists()


def test_goose_mode_environment_variable_picks_the_mode(fake_openai, dirs, tmp_path):
    from goose_api.settings import Settings
    assert Settings.load(environ={"GOOSE_MODE": "smart_approve", "HOME": str(dirs["home"])}, cwd=tmp_path).mode \
        == "smart_approve"


@pytest.mark.slow
def test_async_confirm_and_a_cancel_while_waiting(make_client, fake_openai, dirs):
    client = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("echo a", "a1"), shell("echo b", "b1")]), Reply("both ran"))
    status, body, _ = client.post("/session/start", {"prompt": "two", "session_id": "two"})
    assert [p["id"] for p in body["pending_approvals"]] == ["a1"]
    status, body, _ = client.post("/session/two/confirm", {"id": "a1", "action": "allow_once"})
    assert body["status"] == "waiting_approval" and [p["id"] for p in body["pending_approvals"]] == ["b1"], \
        "a confirm answers at the next approval"
    status, body, response = client.post("/session/two/confirm", {"id": "b1", "action": "allow_once", "async": True})
    assert status == 202 and response.headers["Location"] == "/session/two"
    from tests.api.test_runs import wait_for_state
    assert wait_for_state(client, "two", "idle")["messages"][-1]["content"][0]["text"] == "both ran"
    fake_openai.add(Reply("", tool_calls=[shell("echo c", "c1")]))
    client.post("/session/reply", {"prompt": "three", "session_id": "two"})
    status, answer, _ = client.post("/session/two/cancel")
    assert (status, answer["cancelled"]) == (200, "the approval of developer__shell"), answer
    shown = client.get("/session/two")[1]
    assert shown["state"] == "idle" and shown["pending_approvals"] == []
    assert tool_result({"messages": shown["messages"]}, "c1") == {"status": "error", "error": "cancelled"}
    assert_goose_session(goose_file(dirs, "two"))


@pytest.mark.parametrize("body,status,code", [
    ({"id": "nope", "action": "allow_once"}, 404, "not_found"),
    ({"id": "call_1", "action": "maybe"}, 400, "validation_error"),
    ({"id": "call_1"}, 400, "validation_error"),
    ({"action": "deny"}, 400, "validation_error"),
    ({"id": 5, "action": "deny"}, 400, "validation_error"),
    ({"id": "call_1", "action": "deny", "extra": True}, 400, "validation_error"),
])
@pytest.mark.slow
def test_bad_confirms(make_client, fake_openai, body, status, code):
    client = make_client("approve")
    fake_openai.add(Reply("", tool_calls=[shell("echo x", "call_1")]), Reply("ok"))
    client.post("/session/start", {"prompt": "x", "session_id": "bad"})
    got, answer, _ = client.post("/session/bad/confirm", body)
    assert (got, answer["status"], answer["error"]) == (status, "error", code), answer
    assert client.post("/session/bad/confirm", {"id": "call_1", "action": "allow_once"})[0] == 200
    got, answer, _ = client.post("/session/bad/confirm", {"id": "call_1", "action": "allow_once"})
    assert (got, answer["error"]) == (409, "no_active_run"), "nothing waits any more"
