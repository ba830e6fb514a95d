"""The OpenAI dialects and the MCP endpoint take long-lived slots as the native routes do.

A streamed or waited-for response, a chat completion (streamed or not), a
re-attached response stream and an MCP tool that follows a turn each hold a
request thread until the turn ends: past the key's limit they are 429 with
``Retry-After`` and start nothing, and their slots come back when they end.
The key's two slots are held by event streams on a run waiting for approval
(``mode: approve``), so they stay open as long as the test needs.
"""

from __future__ import annotations

import json

import openai
import pytest

from goose_api import create_app
from tests.api.test_long_requests import budget, held_run, open_stream
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.mcp_fixtures import wait_until
from tests.support.openai_sdk import wsgi_client

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture
def app(fake_openai, dirs):
    application = create_app(settings_for(fake_openai, dirs, mode="approve", threads=10, long_request_limit=6,
                                          long_request_key_limit=2, api_keys=KEYS))
    yield application
    application.extensions["goose_api"].close()


@pytest.fixture
def alice(app) -> ApiClient:
    return ApiClient(app.test_client(), "alice-key")


@pytest.fixture
def full(app, alice, fake_openai):
    """alice's two slots held by event streams on session ``a`` (waiting for approval)."""
    held_run(alice, fake_openai, "a")
    streams = [open_stream(alice, "a"), open_stream(alice, "a")]
    assert budget(app).open("alice") == 2
    yield streams
    for stream in streams:
        stream.close()


def assert_limited(answer) -> dict:
    status, body, response = answer
    assert status == 429, body
    assert response.headers["Retry-After"] == "5"
    return body


def tool_call(name: str, arguments: dict, call_id: int = 1) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}})


def mcp_result(response) -> dict:
    """The JSON-RPC result of an MCP answer (JSON, or the one message of an SSE answer)."""
    text = response.get_data(as_text=True)
    if response.mimetype == "text/event-stream":
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip())
    return json.loads(text)["result"]


def test_responses_and_chat_over_the_key_limit_are_429_and_start_nothing(app, alice, full, fake_openai, dirs):
    sessions_before = sorted(dirs["sessions"].iterdir())
    requests_before = len(fake_openai.requests)
    for body in ({"model": "goose", "input": "wait for me"}, {"model": "goose", "input": "stream", "stream": True}):
        assert_limited(alice.post("/v1/responses", body))
    for stream in (False, True):
        assert_limited(alice.post("/v1/chat/completions", {"model": "goose", "stream": stream,
                                                           "messages": [{"role": "user", "content": "hi"}]}))
    sdk = wsgi_client(app, "alice-key")
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="goose", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.response.headers["Retry-After"] == "5", "the SDK's own client sees a rate limit"
    assert sorted(dirs["sessions"].iterdir()) == sessions_before, "no session was made"
    assert len(fake_openai.requests) == requests_before, "the provider was never called"
    assert budget(app).open("alice") == 2


def test_a_background_response_needs_no_slot_but_re_attaching_to_its_stream_does(app, alice, full, fake_openai):
    fake_openai.add(Reply("in the background"))
    status, created, _ = alice.post("/v1/responses", {"model": "goose", "input": "later", "background": True})
    assert status == 200 and created["status"] in ("queued", "in_progress", "completed"), created
    assert_limited(alice.get(f"/v1/responses/{created['id']}?stream=true"))
    wait_until(lambda: alice.get(f"/v1/responses/{created['id']}")[1]["status"] == "completed", 15,
               "the background response")
    full.pop().close()
    status, _, response = alice.get(f"/v1/responses/{created['id']}?stream=true")
    assert status == 200 and "response.completed" in response.get_data(as_text=True)
    response.close()
    assert budget(app).open("alice") == 1, "the replayed stream gave its slot back"


def test_mcp_tools_that_follow_a_turn_are_429_over_the_limit_and_the_others_answer(app, alice, full, fake_openai):
    requests_before = len(fake_openai.requests)
    for name, arguments in (("start_session", {"prompt": "hi", "session_id": "m"}),
                            ("reply", {"session_id": "a", "prompt": "more"}),
                            ("confirm", {"session_id": "a", "call_id": "a-c"})):
        body = assert_limited(alice.call("POST", "/mcp", data=tool_call(name, arguments),
                                         content_type="application/json", headers=MCP_HEADERS))
        assert body["scope"] == "key", body
    assert alice.get("/session/m")[0] == 404 and len(fake_openai.requests) == requests_before
    assert alice.get("/session/a")[1]["state"] == "waiting_approval", "the refused confirm decided nothing"
    status, _, response = alice.call("POST", "/mcp", data=tool_call("list_sessions", {}),
                                     content_type="application/json", headers=MCP_HEADERS)
    assert status == 200 and [s["id"] for s in mcp_result(response)["structuredContent"]["sessions"]] == ["a"]
    status, _, response = alice.call("POST", "/mcp", data=tool_call("cancel", {"session_id": "a"}),
                                     content_type="application/json",
                                     headers={**MCP_HEADERS, "X-Goose-Api-Slot": "1"})
    assert status == 200, "cancel with no slot free still answers"
    answer = mcp_result(response)["structuredContent"]
    assert answer["stopped"] is False, "at once: it did not wait (the client's own slot header is not believed)"
    wait_until(lambda: alice.get("/session/a")[1]["state"] != "waiting_approval", 15, "the run to stop")
    assert budget(app).open("alice") <= 2


def test_mcp_and_dialect_slots_come_back_when_their_answers_end(app, alice, fake_openai):
    fake_openai.add(Reply("from mcp"), Reply("from responses"), Reply("from chat"), Reply("streamed chat"))
    status, _, response = alice.call("POST", "/mcp", data=tool_call("start_session", {"prompt": "hi"}),
                                     content_type="application/json", headers=MCP_HEADERS)
    assert status == 200 and mcp_result(response)["structuredContent"]["response"] == "from mcp"
    response.close()
    sdk = wsgi_client(app, "alice-key")
    assert sdk.responses.create(model="goose", input="x").output_text == "from responses"
    answer = sdk.chat.completions.create(model="goose", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content == "from chat"
    chunks = sdk.chat.completions.create(model="goose", stream=True, messages=[{"role": "user", "content": "y"}])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed chat"
    assert budget(app).open() == 0


def test_get_mcp_is_405_not_a_stream_that_never_ends(app, alice):
    """A stateless MCP server sends nothing unasked; the SDK's GET stream held a thread for ever, outside any
    limit (any key could open one per thread)."""
    status, body, response = alice.get("/mcp", headers={"Accept": "text/event-stream"}, buffered=False)
    assert status == 405 and body["error"] == "method_not_allowed", body
    assert "POST" in response.headers["Allow"]
    assert budget(app).open() == 0
