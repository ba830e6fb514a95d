"""The dialects over real HTTP (gunicorn): the openai SDK's streams and the official MCP client.

Streaming is checked with gates, not clocks: the provider's answer is held
while the test reads what has already arrived.
"""

from __future__ import annotations

import asyncio
from typing import Iterator

import anyio.to_thread
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fakes.core import Reply, ToolCall
from tests.support.gates import Gate
from tests.support.live import LiveServer, live_env, start_live_server
from tests.support.openai_sdk import check_event, check_response, live_client

KEYS = [{"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"}]


@pytest.fixture
def server(fake_openai, dirs, tmp_path) -> Iterator[LiveServer]:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"api_keys": KEYS}))
    live = start_live_server(live_env(fake_openai, dirs, GOOSE_API_MODE="approve", GOOSE_API_SSE_HEARTBEAT="0.2"),
                             tmp_path, tmp_path / "gunicorn.log")
    yield live
    live.stop()


def test_a_streamed_response_arrives_while_the_turn_runs(server, fake_openai):
    gate = Gate()
    fake_openai.add(Reply("Held back.", gate=gate))
    stream = live_client(server.url, "alice-key").responses.create(model="goose", input="hi", stream=True)
    events = iter(stream)
    first = [check_event(next(events)), check_event(next(events))]
    assert [e.type for e in first] == ["response.created", "response.in_progress"]
    assert first[0].response.status == "in_progress"
    gate.wait_reached()  # the provider has not answered, and the client has the first events already
    gate.open()
    rest = [check_event(event) for event in events]
    assert [e.sequence_number for e in first + rest] == list(range(len(first) + len(rest)))
    assert rest[-1].type == "response.completed" and rest[-1].response.output_text == "Held back."


def test_a_background_response_is_polled_and_re_attached_after_an_event(server, fake_openai):
    client = live_client(server.url, "alice-key")
    gate = Gate()
    fake_openai.add(Reply("Background answer.", gate=gate))
    started = check_response(client.responses.create(model="goose", input="later", background=True))
    assert started.status == "in_progress"
    gate.wait_reached()
    assert client.responses.retrieve(started.id).status == "in_progress"
    attached = client.responses.retrieve(started.id, stream=True, starting_after=1)
    gate.open()
    events = [check_event(event) for event in attached]
    assert events[0].sequence_number == 2 and events[0].type == "response.output_item.added"
    assert events[-1].type == "response.completed"
    assert check_response(client.responses.retrieve(started.id)).output_text == "Background answer."


def test_a_streamed_chat_completion_over_http(server, fake_openai):
    fake_openai.add(Reply("Streamed chat."))
    chunks = list(live_client(server.url, "bob-key").chat.completions.create(
        model="goose", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Streamed chat."


def run(coroutine):
    return asyncio.run(coroutine)


def test_mcp_tools_delegate_to_goose_with_progress_approvals_and_cancel(server, fake_openai, dirs):
    fake_openai.add(Reply("Hello from goose."),
                    Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo via-mcp"}, id="c1")]),
                    Reply("It printed via-mcp."))
    gate = Gate()
    fake_openai.add(Reply("never heard", gate=gate))

    async def scenario():
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer alice-key"},
                                      timeout=httpx2.Timeout(30, read=None)) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert names == {"start_session", "reply", "confirm", "cancel", "list_sessions", "read_session"}
                deltas: list[str] = []

                async def progress(done, total, message):
                    deltas.append(message)
                started = await client.call_tool("start_session", {"prompt": "hi"}, progress_callback=progress)
                assert not started.is_error, started.content
                answer = started.structured_content
                assert answer["response"] == "Hello from goose." == "".join(deltas)
                session = answer["session_id"]
                asking = (await client.call_tool("reply", {"session_id": session, "prompt": "run it"}))
                assert asking.structured_content["status"] == "waiting_approval"
                assert asking.structured_content["pending_approvals"][0]["id"] == "c1"
                done = await client.call_tool("confirm", {"session_id": session, "call_id": "c1"})
                assert done.structured_content["response"] == "It printed via-mcp."
                listed = (await client.call_tool("list_sessions", {})).structured_content
                assert [s["id"] for s in listed["sessions"]] == [session]
                shown = (await client.call_tool("read_session", {"session_id": session, "since": 2}))
                assert shown.structured_content["message_count"] == 6
                assert len(shown.structured_content["messages"]) == 4
                pending = asyncio.create_task(client.call_tool("reply", {"session_id": session, "prompt": "slow"}))
                await anyio.to_thread.run_sync(gate.wait_reached)
                cancelled = await client.call_tool("cancel", {"session_id": session})
                assert cancelled.structured_content["stopped"] is True
                assert (await pending).structured_content["status"] == "cancelled"
                bad = await client.call_tool("confirm", {"session_id": session, "call_id": "c1", "action": "maybe"})
                assert bad.is_error and "action must be one of" in bad.content[0].text
                return session

    session = run(scenario())
    gate.open()
    assert (dirs["sessions"] / f"{session}.jsonl").is_file()


def test_mcp_tools_reach_only_the_keys_own_sessions(server, fake_openai):
    fake_openai.add(Reply("alice only"))

    async def call(key: str, tool: str, arguments: dict):
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                return await client.call_tool(tool, arguments)

    session = run(call("alice-key", "start_session", {"prompt": "secret"})).structured_content["session_id"]
    for tool, arguments in (("read_session", {"session_id": session}),
                            ("reply", {"session_id": session, "prompt": "peek"}),
                            ("cancel", {"session_id": session}),
                            ("confirm", {"session_id": session, "call_id": "c1"})):
        result = run(call("bob-key", tool, arguments))
        assert result.is_error and f"Session {session} not found" in result.content[0].text, (tool, result)
    assert run(call("bob-key", "list_sessions", {})).structured_content["sessions"] == []
    refused = httpx2.post(server.url + "/mcp", headers={"Authorization": "Bearer wrong"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"


def test_an_mcp_always_allow_holds_for_the_keys_own_turns_only(server, fake_openai):
    def shell(command: str, call_id: str) -> Reply:
        return Reply("", tool_calls=[ToolCall("developer__shell", {"command": command}, id=call_id)])

    fake_openai.add(Reply("started"), shell("echo 1", "c1"), Reply("ran once"), shell("echo 2", "c2"),
                    Reply("ran again"), shell("echo 3", "c3"), Reply("declined"))

    async def scenario(key: str, *calls: tuple[str, dict]) -> list[dict]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as client:
                out: list[dict] = []
                for tool, arguments in calls:
                    result = await client.call_tool(tool, {k: v.format(*[o.get("session_id") for o in out])
                                                           if isinstance(v, str) else v for k, v in arguments.items()})
                    assert not result.is_error, result.content
                    out.append(result.structured_content)
                return out

    started, asking, allowed, again = run(scenario(
        "alice-key", ("start_session", {"prompt": "hi"}), ("reply", {"session_id": "{0}", "prompt": "run"}),
        ("confirm", {"session_id": "{0}", "call_id": "c1", "action": "always_allow"}),
        ("reply", {"session_id": "{0}", "prompt": "again"})))
    assert asking["status"] == "waiting_approval" and allowed["response"] == "ran once"
    assert (again["status"], again["response"]) == ("success", "ran again"), "alice's reply turns run it"
    bobs, denied = run(scenario("bob-key", ("start_session", {"prompt": "run"}),
                                ("confirm", {"session_id": "{0}", "call_id": "c3", "action": "deny"})))
    assert bobs["status"] == "waiting_approval", "alice's choice is not bob's"
    assert denied["response"] == "declined"


def test_a_malformed_mcp_message_is_refused_and_the_server_stays_up(server, fake_openai):
    headers = {"Authorization": "Bearer alice-key", "Accept": "application/json, text/event-stream"}
    garbled = httpx2.post(server.url + "/mcp", headers={**headers, "Content-Type": "application/json"},
                          content=b"{not json", timeout=30)
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == -32700  # JSON-RPC parse error
    not_json = httpx2.post(server.url + "/mcp", headers={**headers, "Content-Type": "text/plain"},
                           content=b"hello", timeout=30)
    assert not_json.status_code == 415 and not_json.json()["error"] == "unsupported_media_type"
    fake_openai.add(Reply("still here"))
    assert live_client(server.url, "alice-key").responses.create(model="goose", input="x").output_text == \
        "still here"
    server.stop()
    assert "Traceback" not in server.log()
