"""POST /session/start and /session/reply through Flask's client, against the fake OpenAI API."""

from __future__ import annotations

from pathlib import Path

import pytest

from goose_api import create_app
from tests.fakes.core import Fail, Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file


def session_file(dirs, session_id) -> Path:
    return goose_file(dirs, session_id)


@pytest.mark.slow
def test_start_answers_with_the_seed_shape(client, fake_openai, dirs):
    fake_openai.add(Reply("Hello there!", usage=(12, 3)))
    status, body, _ = client.post("/session/start", {"prompt": "Say hello"})
    assert status == 200, body
    assert body["status"] == "success"
    assert body["message"] == "Session started with prompt: Say hello"
    assert body["response"] == "Hello there!"
    assert body["usage"] == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Say hello"}]
    meta, messages = assert_goose_session(session_file(dirs, body["session_id"]))
    assert messages == body["messages"]
    assert meta["working_dir"] == str(dirs["work"]) and meta["description"] == "Say hello"
    assert (meta["input_tokens"], meta["accumulated_total_tokens"]) == (12, 15)
    request = fake_openai.requests[0].body
    assert request["messages"][0]["role"] == "system"
    assert str(dirs["work"]) in request["messages"][0]["content"]
    assert request["messages"][-1] == {"role": "user", "content": "Say hello"}


@pytest.mark.slow
def test_reply_continues_the_most_recent_session(client, fake_openai, dirs):
    fake_openai.add(Reply("first"), Reply("second"))
    _, started, _ = client.post("/session/start", {"prompt": "one"})
    status, body, _ = client.post("/session/reply", {"prompt": "two"})
    assert status == 200, body
    assert body["message"] == "Reply: second"
    assert body["session_id"] == started["session_id"]
    history = fake_openai.requests[1].body["messages"]
    assert [(m["role"], m.get("content")) for m in history[1:]] == [
        ("user", "one"), ("assistant", "first"), ("user", "two")]
    _, messages = assert_goose_session(session_file(dirs, body["session_id"]))
    assert len(messages) == 4


@pytest.mark.slow
def test_reply_by_id_and_client_given_id(client, fake_openai, dirs):
    fake_openai.add(Reply("a"), Reply("b"), Reply("c"))
    client.post("/session/start", {"prompt": "x", "session_id": "mine"})
    client.post("/session/start", {"prompt": "y", "session_id": "other"})
    status, body, _ = client.post("/session/reply", {"prompt": "z", "session_id": "mine"})
    assert (status, body["session_id"], body["response"]) == (200, "mine", "c")
    assert len(assert_goose_session(session_file(dirs, "mine"))[1]) == 4
    assert len(assert_goose_session(session_file(dirs, "other"))[1]) == 2


@pytest.mark.slow
def test_unknown_tool_gets_an_error_response_and_the_loop_goes_on(client, fake_openai, dirs):
    fake_openai.add(Reply("", tool_calls=[ToolCall("nope__missing", {"x": 1}, id="call_1")]),
                    Reply("I could not use that tool."))
    status, body, _ = client.post("/session/start", {"prompt": "use a tool"})
    assert status == 200, body
    assert body["response"] == "I could not use that tool."
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    response = body["messages"][2]["content"][0]
    assert response["type"] == "toolResponse" and response["id"] == "call_1"
    assert response["toolResult"]["status"] == "error"
    second = fake_openai.requests[1].body["messages"]
    tool_message = [m for m in second if m["role"] == "tool"][0]
    assert tool_message["tool_call_id"] == "call_1"
    assert_goose_session(session_file(dirs, body["session_id"]))


@pytest.mark.slow
def test_unparseable_tool_arguments_become_an_error_the_model_sees(client, fake_openai, dirs):
    fake_openai.add(Reply("", tool_calls=[ToolCall("dev__shell", "{not json", id="call_b")]),
                    Reply("sorry"))
    status, body, _ = client.post("/session/start", {"prompt": "go"})
    assert status == 200, body
    response = body["messages"][2]["content"][0]
    assert (response["id"], response["toolResult"]["status"]) == ("call_b", "error")
    assert_goose_session(session_file(dirs, body["session_id"]))


@pytest.mark.slow
def test_max_turns_stops_the_loop(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, max_turns=2))
    client = ApiClient(app.test_client())
    for n in range(2):
        fake_openai.add(Reply("", tool_calls=[ToolCall("x__y", {}, id=f"c{n}")]))
    status, body, _ = client.post("/session/start", {"prompt": "loop"})
    assert status == 200, body
    assert body["status"] == "warning" and "max_turns" in body["warnings"][0]
    assert "maximum number of actions" in body["response"]
    assert_goose_session(session_file(dirs, body["session_id"]))
    app.extensions["goose_api"].close()


@pytest.mark.slow
def test_provider_failure_is_502_and_the_session_goes_on(client, fake_openai, dirs):
    fake_openai.add(Fail(500, "upstream exploded"), Fail(500, "upstream exploded"))
    status, body, _ = client.post("/session/start", {"prompt": "remember me", "session_id": "s502"})
    assert status == 502, body
    assert body["status"] == "error" and body["error"] == "provider_error"
    assert "openai" in body["message"] and body["session_id"] == "s502"
    _, messages = assert_goose_session(session_file(dirs, "s502"))
    assert messages[0]["content"][0]["text"] == "remember me"
    fake_openai.add(Reply("back again"))
    status, body, _ = client.post("/session/reply", {"prompt": "still there?", "session_id": "s502"})
    assert status == 200 and body["response"] == "back again"
    sent = [m.get("content") for m in fake_openai.requests[-1].body["messages"] if m["role"] == "user"]
    assert sent == ["remember me", "still there?"]


@pytest.mark.slow
def test_rate_limit_after_retries_is_503_with_retry_after(client, fake_openai):
    fake_openai.add(Fail(429, "slow down", retry_after=0, code="rate_limit_exceeded"),
                    Fail(429, "slow down", retry_after=0, code="rate_limit_exceeded"))
    status, body, response = client.post("/session/start", {"prompt": "hi"})
    assert status == 503, body
    assert body["error"] == "provider_error" and body["kind"] == "rate_limit"


@pytest.mark.slow
def test_busy_session_is_409(client, app, fake_openai):
    fake_openai.add(Reply("ok"))
    _, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "busy"})
    with app.extensions["goose_api"].store.lock("busy"):
        status, err, response = client.post("/session/reply", {"prompt": "y", "session_id": "busy"})
    assert status == 409 and err["error"] == "session_busy"
    assert response.headers["Retry-After"]


@pytest.mark.slow
def test_working_dir_is_recorded(client, fake_openai, dirs, tmp_path):
    fake_openai.add(Reply("ok"))
    status, body, _ = client.post("/session/start", {"prompt": "x", "working_dir": str(tmp_path)})
    assert status == 200
    meta, _ = assert_goose_session(session_file(dirs, body["session_id"]))
    assert meta["working_dir"] == str(tmp_path)


@pytest.mark.slow
def test_dangling_tool_requests_are_answered_before_the_next_prompt(client, app, fake_openai, dirs):
    from goose_api.conversation import Message, tool_request
    store = app.extensions["goose_api"].store
    session = store.create("crashed", str(dirs["work"]))
    store.append(session, Message.user("do it"), Message.assistant(tool_request("call_x", "dev__shell", {})))
    fake_openai.add(Reply("resumed"))
    status, body, _ = client.post("/session/reply", {"prompt": "go on", "session_id": "crashed"})
    assert status == 200, body
    _, messages = assert_goose_session(session_file(dirs, "crashed"))
    assert messages[2]["content"][0]["toolResult"]["status"] == "error"
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "user", "assistant"]


def test_provider_config(client):
    status, body, _ = client.get("/provider/config")
    assert status == 200
    assert (body["provider"], body["model"]) == ("openai", "gpt-4o")
    assert all("key" not in k.lower() for k in body)
