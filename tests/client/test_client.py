"""GooseClient against a real gunicorn on loopback with the scripted fake OpenAI provider.

Most tests share one server (``tests.support.shared_server``); the approval tests
start one in ``approve`` mode. The errors are tested in test_client_errors.py.
"""

from __future__ import annotations

import json
import time
from typing import Iterator

import pytest

from goose_api.client import GooseClient, client_environment
from goose_api.client.errors import ConflictError, ConnectionFailed, NotFoundError
from goose_api.client.events import (
    Accepted,
    ApprovalRequiredEvent,
    DoneEvent,
    MessageEvent,
    ToolRequestEvent,
    ToolResponseEvent,
    Turn,
)
from goose_api.conversation import DECLINED_TEXT
from tests.fakes.core import Reply
from tests.support.app import API_KEY
from tests.support.cutting_proxy import CuttingProxy
from tests.support.gates import Gate
from tests.support.live import LiveServer, live_env, start_live_server
from tests.support.mcp_fixtures import wait_until
from tests.support.shared_server import fake, module_server, shared_fake, shell, work_dir  # noqa: F401  (fixtures)

LONG_TEXT = "A long streamed answer, sent two characters at a time, so the stream has many events to cut. " * 2


@pytest.fixture(scope="module")
def server(shared_fake, tmp_path_factory) -> Iterator[LiveServer]:
    yield from module_server(shared_fake, tmp_path_factory, "client_server")


@pytest.fixture
def client(server) -> Iterator[GooseClient]:
    with GooseClient(server.url, API_KEY, timeout=20, reconnect_delay=0.05) as goose:
        yield goose


# --- turns ---------------------------------------------------------------------------

def test_start_reply_and_the_session_they_make(client, fake):
    fake.add(Reply("Hello, I am goose."), Reply("Still here."))
    turn = client.start("hi", "c_basic")
    assert isinstance(turn, Turn)
    assert (turn.status, turn.session_id, turn.response) == ("success", "c_basic", "Hello, I am goose.")
    assert turn.run_id and turn.usage["total_tokens"] == 15 and [m["role"] for m in turn.messages] == ["user", "assistant"]
    again = client.reply("still there?", "c_basic")
    assert again.response == "Still here." and again.message == "Reply: Still here."
    assert [m["content"] for m in fake.last_body()["messages"] if m["role"] == "user"] == ["hi", "still there?"]
    detail = client.session("c_basic")
    assert detail["state"] == "idle" and detail["message_count"] == 4
    assert [m["role"] for m in client.session("c_basic", since=2)["messages"]] == ["user", "assistant"]
    assert "c_basic" in [s["id"] for s in client.sessions()]
    assert client.sessions(limit=1)[0]["id"] == "c_basic"  # newest first


def test_reply_without_an_id_goes_to_the_most_recent_session(client, fake):
    fake.add(Reply("one"), Reply("two"))
    client.start("first", "c_recent")
    assert client.reply("and?").session_id == "c_recent"


def test_stream_yields_typed_events_in_order_and_knows_a_generated_session(client, fake):
    fake.add(Reply("Let me look. ", tool_calls=[shell("echo looked", "call_look")], chunk_size=4),
             Reply("It says looked.", chunk_size=4))
    stream = client.stream("look around")
    events = list(stream)
    kinds = [type(event) for event in events]
    assert kinds[-1] is DoneEvent and kinds.count(DoneEvent) == 1
    request = next(e for e in events if isinstance(e, ToolRequestEvent))
    answer = next(e for e in events if isinstance(e, ToolResponseEvent))
    assert (request.call_id, request.tool, request.arguments) == ("call_look", "developer__shell",
                                                                 {"command": "echo looked"})
    assert answer.call_id == "call_look" and "looked" in answer.text and answer.error is None
    assert kinds.index(ToolRequestEvent) < kinds.index(ToolResponseEvent)
    text = "".join(e.text for e in events if isinstance(e, MessageEvent))
    assert text == "Let me look. It says looked."
    assert sum(isinstance(e, MessageEvent) for e in events) > 2  # deltas, as the provider streamed them
    ids = [e.id for e in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    done = events[-1].turn
    assert stream.session_id == done.session_id and stream.run_id == done.run_id
    assert done.response == "It says looked."


def test_stream_reconnects_after_a_dropped_connection_without_gaps_or_repeats(server, client, fake):
    fake.add(Reply(LONG_TEXT, chunk_size=2))
    with CuttingProxy(int(server.url.rsplit(":", 1)[1]), cut_after=[900, 700]) as proxy:
        cut = GooseClient(proxy.url, API_KEY, timeout=20, reconnect_delay=0.05)
        stream = cut.stream("tell me a long story", "c_cut", new=True)
        events = list(stream)
        assert proxy.connections >= 3  # the POST, a reconnect cut again, one more
    direct = [(e.id, e.type, e.data) for e in client.events("c_cut", run_id=stream.run_id)]
    assert [(e.id, e.type, e.data) for e in events] == direct
    assert isinstance(events[-1], DoneEvent) and events[-1].turn.response == LONG_TEXT
    assert "".join(e.text for e in events if isinstance(e, MessageEvent)) == LONG_TEXT


def test_events_after_an_id_and_of_an_earlier_run(client, fake):
    fake.add(Reply("first answer"), Reply("second answer"))
    first = client.start("one", "c_events")
    client.reply("two", "c_events")
    earlier = list(client.events("c_events", run_id=first.run_id))
    assert earlier[-1].turn.response == "first answer"
    latest = list(client.events("c_events"))
    assert latest[-1].turn.response == "second answer" and latest[0].id > earlier[-1].id
    assert [e.id for e in client.events("c_events", after=latest[0].id)] == [e.id for e in latest[1:]]


def test_a_lost_stream_ends_in_connection_failed_after_bounded_reconnects(server, client, fake):
    fake.add(Reply(LONG_TEXT, chunk_size=2))
    with CuttingProxy(int(server.url.rsplit(":", 1)[1]), cut_after=[400], refuse_later=True) as proxy:
        lost = GooseClient(proxy.url, API_KEY, timeout=20, max_reconnects=2, reconnect_delay=0.01)
        stream = lost.stream("a story nobody hears", "c_lost", new=True)
        with pytest.raises(ConnectionFailed) as caught:
            list(stream)
    assert caught.value.status is None and caught.value.code == "stream_lost" and "2 tries" in caught.value.message
    assert client.wait("c_lost", stream.run_id).response == LONG_TEXT  # the run went on


def test_background_start_then_wait(client, fake):
    gate = Gate()
    fake.add(Reply("done in the background", gate=gate))
    accepted = client.start("work quietly", "c_background", background=True)
    gate.open()
    assert isinstance(accepted, Accepted) and accepted.session_id == "c_background" and accepted.run_id
    turn = client.wait("c_background", accepted.run_id)
    assert (turn.status, turn.response, turn.run_id) == ("success", "done in the background", accepted.run_id)


def test_a_capped_wait_answers_accepted_and_wait_times_out(client, fake):
    gate = Gate()
    fake.add(Reply("slow answer", gate=gate))
    started = time.monotonic()
    accepted = client.start("take your time", "c_capped", wait=1)
    assert isinstance(accepted, Accepted) and time.monotonic() - started >= 1.0, "it waited the second asked for"
    with pytest.raises(TimeoutError):
        client.wait("c_capped", accepted.run_id, timeout=0.3)
    gate.open()
    assert client.wait("c_capped", accepted.run_id).response == "slow answer"


def test_cancel_a_running_tool_call(client, fake, server):
    started = work_dir(server) / "c_cancel.started"
    fake.add(Reply(tool_calls=[shell(f"touch {started} && sleep 30", "call_nap")]))
    accepted = client.start("nap", "c_cancel", background=True)
    wait_until(started.exists, what="the tool call to start")
    answer = client.cancel("c_cancel")
    assert answer["cancelled"] == "the tool call developer__shell" and answer["state"] == "idle"
    assert client.wait("c_cancel", accepted.run_id).status == "cancelled"


def test_end_and_summarize_and_delete(client, fake):
    fake.add(Reply("Paris."), Reply("The user asked for the capital of France; it is Paris."))
    client.start("capital of France?", "c_admin")
    assert client.summarize("c_admin") == "The user asked for the capital of France; it is Paris."
    assert client.end("c_admin")["status"] == "success"
    assert client.delete("c_admin")["status"] == "success"
    with pytest.raises(NotFoundError):
        client.session("c_admin")


# --- extensions, provider, operations ------------------------------------------------

def test_extensions_add_list_details_and_remove(client):
    assert client.extensions() == ["developer"]
    client.add_extension(type="builtin", name="mcp_say")
    assert sorted(client.extensions()) == ["developer", "mcp_say"]
    say = next(e for e in client.extension_details() if e["name"] == "mcp_say")
    assert say["status"] == "running" and say["tools"] == ["mcp_say__say"]
    client.remove_extension("mcp_say")
    assert client.extensions() == ["developer"]


def test_provider_switch_reaches_the_provider(client, fake):
    assert client.provider() == {"provider": "openai", "model": "gpt-4o", "configured": True}
    try:
        assert client.set_provider("openai", "gpt-4o-mini")["model"] == "gpt-4o-mini"
        fake.add(Reply("small answer"))
        client.start("hi", "c_model")
        assert fake.last_body()["model"] == "gpt-4o-mini"
    finally:
        client.set_provider("openai", "gpt-4o")


def test_health_and_ready(client):
    assert client.health() == {"status": "ok"}
    assert client.ready()["status"] == "ready"


# --- configuration -------------------------------------------------------------------

def test_url_and_key_come_from_the_environment_or_a_local_servers_key_file(tmp_path):
    assert client_environment({"GOOSE_API_URL": "http://h:1", "GOOSE_API_KEY": "k"}) == ("http://h:1", "k")
    assert client_environment({"HOME": str(tmp_path)}) == ("http://127.0.0.1:8080", None)
    key_file = tmp_path / ".local" / "share" / "goose-api" / "api_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("generated-key\n")
    assert client_environment({"HOME": str(tmp_path)})[1] == "generated-key"
    assert client_environment({"HOME": "/nowhere", "XDG_DATA_HOME": str(tmp_path / ".local" / "share")})[1] == \
        "generated-key"


# --- approvals -----------------------------------------------------------------------

@pytest.fixture
def approve_client(fake_openai, dirs, tmp_path) -> Iterator[GooseClient]:
    live = start_live_server(live_env(fake_openai, dirs, GOOSE_API_MODE="approve"), tmp_path,
                             tmp_path / "gunicorn.log")
    try:
        with GooseClient(live.url, API_KEY, timeout=20) as goose:
            yield goose
    finally:
        live.stop()


@pytest.mark.live
def test_approvals_blocking_and_streamed(approve_client, fake_openai):
    fake_openai.add(Reply(tool_calls=[shell("echo nope", "call_deny")]), Reply("You declined; fine."),
                    Reply(tool_calls=[shell("echo yes", "call_allow")], chunk_size=50), Reply("It said yes."))
    waiting = approve_client.start("run it", "c_approve")
    assert waiting.status == "waiting_approval"
    assert [(p["id"], p["tool"]) for p in waiting.pending_approvals] == [("call_deny", "developer__shell")]
    denied = approve_client.confirm("c_approve", "call_deny", "deny")
    assert denied.status == "success" and denied.response == "You declined; fine."
    assert DECLINED_TEXT in json.dumps(fake_openai.requests[1].body["messages"])
    stream = approve_client.stream("now run this one", "c_approve")
    seen = []
    for event in stream:
        seen.append(event)
        if isinstance(event, ApprovalRequiredEvent):
            assert (event.call_id, event.arguments) == ("call_allow", {"command": "echo yes"})
            assert isinstance(approve_client.confirm("c_approve", event.call_id, "allow_once", background=True),
                              Accepted)
    answer = next(e for e in seen if isinstance(e, ToolResponseEvent))
    assert "yes" in answer.text and seen[-1].turn.response == "It said yes."


@pytest.mark.live
def test_wait_returns_when_a_run_waits_for_approval(approve_client, fake_openai):
    fake_openai.add(Reply(tool_calls=[shell("echo hi", "call_wait")]), Reply("ran it"))
    accepted = approve_client.start("run", "c_wait_approval", background=True)
    turn = approve_client.wait("c_wait_approval", accepted.run_id, timeout=20)
    assert turn.status == "waiting_approval" and turn.pending_approvals[0]["id"] == "call_wait"
    assert approve_client.confirm("c_wait_approval", "call_wait", "always_allow").response == "ran it"
    with pytest.raises(ConflictError):  # nothing waits any more
        approve_client.confirm("c_wait_approval", "call_wait", "deny")

