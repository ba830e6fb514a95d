"""Chat Completions (/v1/chat/completions, /v1/models) through the official openai SDK, in-process over WSGI."""

from __future__ import annotations

import openai
import pytest

from goose_api import create_app
from tests.fakes.core import Reply, ToolCall
from tests.support.app import settings_for
from tests.support.goose_format import assert_goose_session
from tests.support.openai_sdk import wsgi_client

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})


@pytest.fixture
def make_app(fake_openai, dirs):
    apps = []

    def build(**overrides):
        app = create_app(settings_for(fake_openai, dirs, **overrides))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["goose_api"].close()


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def sessions(dirs) -> list:
    return sorted(dirs["sessions"].glob("*.jsonl"))


def test_a_completion_runs_tools_on_the_server_and_answers_the_final_text(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo 4"}, id="c1")],
                          usage=(6, 2)), Reply("It is 4.", usage=(9, 3)))
    raw = client.chat.completions.with_raw_response.create(
        model="goose", messages=[{"role": "system", "content": "Be exact."}, user("2+2?")])
    completion = raw.parse()
    assert completion.choices[0].message.content == "It is 4." and completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == \
        (15, 5, 20)
    session = raw.headers["X-Goose-Session-Id"]
    _, messages = assert_goose_session(dirs["sessions"] / f"{session}.jsonl")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "Be exact." in fake_openai.requests[0].body["messages"][0]["content"]


def test_a_streamed_completion_sends_chunks_then_usage_then_done(make_app, fake_openai):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("Thinking.", tool_calls=[ToolCall("developer__shell", {"command": "echo x"}, id="c1")]),
                    Reply("Answer."))
    chunks = list(client.chat.completions.create(model="goose", messages=[user("go")], stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Thinking.\n\nAnswer."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 30
    assert len({c.id for c in chunks}) == 1


def test_resending_the_history_continues_the_session_and_another_history_seeds_one(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("Hello!"), Reply("Fine."), Reply("Sure."))
    client.chat.completions.create(model="goose", messages=[user("hi")])
    client.chat.completions.create(model="goose", messages=[user("hi"), assistant("Hello!"), user("how are you?")])
    assert len(sessions(dirs)) == 1
    assert len(assert_goose_session(sessions(dirs)[0])[1]) == 4
    client.chat.completions.create(model="goose", messages=[user("hi"), assistant("Edited elsewhere"), user("so?")])
    assert len(sessions(dirs)) == 2, "a history goose did not give is not its session's: a new one, seeded"
    sent = [(m["role"], m["content"]) for m in fake_openai.requests[-1].body["messages"][1:]]
    assert sent == [("user", "hi"), ("assistant", "Edited elsewhere"), ("user", "so?")]


def test_a_named_session_is_continued_by_header_or_metadata(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("one"), Reply("two"), Reply("three"))
    raw = client.chat.completions.with_raw_response.create(model="goose", messages=[user("start")])
    session = raw.headers["X-Goose-Session-Id"]
    client.chat.completions.create(model="goose", messages=[user("only the new message")],
                                   extra_headers={"X-Goose-Session-Id": session})
    client.chat.completions.create(model="goose", messages=[user("again")], metadata={"session_id": session},
                                   store=True)
    assert len(sessions(dirs)) == 1
    assert len(assert_goose_session(dirs["sessions"] / f"{session}.jsonl")[1]) == 6


def test_models_lists_goose_and_the_servers_model(make_app):
    client = wsgi_client(make_app())
    assert [m.id for m in client.models.list()] == ["goose", "goose:openai/gpt-4o"]
    assert client.models.retrieve("goose").owned_by == "goose-api"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-5")


@pytest.mark.parametrize("kwargs, param", [
    ({"messages": []}, "messages"),
    ({"messages": [user("x"), assistant("y")]}, "messages"),
    ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]}, "messages[0].role"),
    ({"messages": [user("x")], "n": 2}, "n"),
    ({"messages": [user("x")], "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [user("x")], "model": "other"}, "model"),
    ({"messages": [user("x")], "stream_options": {"include_usage": True}}, "stream_options"),
])
def test_bad_requests_are_openai_errors_naming_the_param(make_app, fake_openai, kwargs, param):
    client = wsgi_client(make_app())
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**{"model": "goose", **kwargs})
    assert (caught.value.body["type"], caught.value.body["param"]) == ("invalid_request_error", param)
    assert fake_openai.requests == []


def test_a_key_reaches_only_its_own_sessions(make_app, fake_openai, dirs):
    app = make_app(api_keys=KEYS)
    alice, bob = wsgi_client(app, "alice-key"), wsgi_client(app, "bob-key")
    fake_openai.add(Reply("alice's answer"), Reply("bob's own"))
    raw = alice.chat.completions.with_raw_response.create(model="goose", messages=[user("secret plan")])
    session = raw.headers["X-Goose-Session-Id"]
    for named in ({"extra_headers": {"X-Goose-Session-Id": session}}, {"metadata": {"session_id": session}}):
        with pytest.raises(openai.NotFoundError):
            bob.chat.completions.create(model="goose", messages=[user("peek")], store=True, **named)
    raw = bob.chat.completions.with_raw_response.create(
        model="goose", messages=[user("secret plan"), assistant("alice's answer"), user("more")])
    assert raw.headers["X-Goose-Session-Id"] != session, "the same history never matches another key's session"
    assert len(assert_goose_session(dirs["sessions"] / f"{session}.jsonl")[1]) == 2


def test_a_turn_waiting_for_approval_says_so_and_a_failed_turn_is_an_error(make_app, fake_openai):
    client = wsgi_client(make_app(mode="approve"))
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo x"}, id="c1")]))
    raw = client.chat.completions.with_raw_response.create(model="goose", messages=[user("run")])
    assert "waiting for approval of developer__shell" in raw.parse().choices[0].message.content
    session = raw.headers["X-Goose-Session-Id"]
    with pytest.raises(openai.ConflictError):
        client.chat.completions.create(model="goose", messages=[user("next")],
                                       extra_headers={"X-Goose-Session-Id": session})


def test_always_allow_holds_in_the_chat_turns_of_the_key_that_chose_it_only(make_app, fake_openai):
    app = make_app(mode="approve", api_keys=KEYS)
    alice, bob = wsgi_client(app, "alice-key"), wsgi_client(app, "bob-key")
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo 1"}, id="c1")]))
    raw = alice.chat.completions.with_raw_response.create(model="goose", messages=[user("run")])
    session = raw.headers["X-Goose-Session-Id"]
    fake_openai.add(Reply("ran once"))
    confirmed = app.test_client().post(f"/session/{session}/confirm", json={"id": "c1", "action": "always_allow"},
                                       headers={"x-api-key": "alice-key"})
    assert confirmed.status_code == 200 and confirmed.get_json()["response"] == "ran once"
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo 2"}, id="c2")]),
                    Reply("ran again"))
    again = alice.chat.completions.create(model="goose", messages=[user("again")],
                                          extra_headers={"X-Goose-Session-Id": session})
    assert again.choices[0].message.content == "ran again", "a reply turn is alice's too"
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo 3"}, id="c3")]))
    asked = bob.chat.completions.create(model="goose", messages=[user("run")])
    assert "waiting for approval of developer__shell" in asked.choices[0].message.content, "alice's choice only"
