"""The Responses API (/v1/responses) through the official openai SDK, in-process over WSGI.

Every answer is validated by the SDK's own pydantic models (strict client), so
the shapes are OpenAI's; the fake provider and the session files show what
goose did underneath.
"""

from __future__ import annotations

import json

import openai
import pytest

from goose_api import create_app
from tests.fakes.core import Reply, ToolCall
from tests.support.app import API_KEY, settings_for
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session
from tests.support.mcp_fixtures import wait_until
from tests.support.openai_sdk import check_event, check_response, wsgi_client

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"},
        {"name": "ops", "key": "ops-key", "admin": True})


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


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def test_a_response_shows_tool_calls_as_mcp_call_items_and_text_as_a_message(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("Let me look.", tool_calls=[shell("echo hi-there", "c1")], usage=(7, 3)),
                    Reply("It printed hi-there.", usage=(11, 4)))
    response = client.responses.create(model="goose", input="run echo", metadata={"ticket": "42"})
    check_response(response)
    assert response.status == "completed" and response.model == "goose" and response.metadata == {"ticket": "42"}
    assert [item.type for item in response.output] == ["message", "mcp_call", "message"]
    call = response.output[1]
    assert (call.server_label, call.name, json.loads(call.arguments)) == ("developer", "shell",
                                                                          {"command": "echo hi-there"})
    assert call.status == "completed" and "hi-there" in call.output and call.error is None
    assert response.output_text == "Let me look.It printed hi-there."
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (18, 7, 25)
    session = response.conversation.id
    _, messages = assert_goose_session(dirs["sessions"] / f"{session}.jsonl")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert fake_openai.requests[0].body["messages"][-1] == {"role": "user", "content": "run echo"}
    assert client.responses.retrieve(response.id).model_dump() == response.model_dump()


def test_a_failing_tool_is_a_failed_mcp_call_with_its_error(make_app, fake_openai):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("", tool_calls=[ToolCall("nosuch__tool", {}, id="c1")]), Reply("That tool is missing."))
    response = check_response(client.responses.create(model="goose", input="try"))
    call = response.output[0]
    assert (call.type, call.status, call.server_label, call.name) == ("mcp_call", "failed", "nosuch", "tool")
    assert call.output is None and call.error.type == "mcp_tool_execution_error"
    assert "nosuch__tool" in json.dumps(call.error.content)


def test_previous_response_id_and_conversation_continue_the_same_session(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("one"), Reply("two"), Reply("three"))
    first = client.responses.create(model="goose", input="first")
    second = client.responses.create(model="goose", input="second", previous_response_id=first.id)
    third = client.responses.create(model="goose", input="third", conversation=first.conversation.id)
    assert first.conversation.id == second.conversation.id == third.conversation.id
    assert second.previous_response_id == first.id and third.output_text == "three"
    sent = [m["content"] for m in fake_openai.requests[-1].body["messages"] if m["role"] != "system"]
    assert sent == ["first", "one", "second", "two", "third"]
    assert len(list(dirs["sessions"].glob("*.jsonl"))) == 1


def test_input_items_seed_a_new_session_and_instructions_reach_the_system_prompt(make_app, fake_openai, dirs):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("Paris, still."))
    response = client.responses.create(model="goose", instructions="Answer in three words.", input=[
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "And now?"}]}])
    body = fake_openai.requests[0].body
    assert [(m["role"], m["content"]) for m in body["messages"][1:]] == [
        ("user", "Capital of France?"), ("assistant", "Paris."), ("user", "And now?")]
    assert "Answer in three words." in body["messages"][0]["content"] and "Be terse." in body["messages"][0]["content"]
    _, messages = assert_goose_session(dirs["sessions"] / f"{response.conversation.id}.jsonl")
    assert len(messages) == 4
    assert response.instructions == "Answer in three words.\n\nBe terse."


def test_a_streamed_response_sends_the_documented_events_in_order(make_app, fake_openai):
    client = wsgi_client(make_app())
    fake_openai.add(Reply("", tool_calls=[shell("echo streamed", "c1")]), Reply("All done."))
    events = [check_event(event) for event in client.responses.create(model="goose", input="go", stream=True)]
    final = events[-1].response
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert types[2:7] == ["response.output_item.added", "response.mcp_call_arguments.done",
                          "response.mcp_call.in_progress", "response.mcp_call.completed",
                          "response.output_item.done"]
    assert "response.output_text.delta" in types and "response.content_part.done" in types
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "All done." == final.output_text
    check_response(final)
    assert final.status == "completed" and [i.type for i in final.output] == ["mcp_call", "message"]


def test_approval_round_trip_through_mcp_approval_request_and_response(make_app, fake_openai, dirs):
    client = wsgi_client(make_app(mode="approve"))
    fake_openai.add(Reply("", tool_calls=[shell("echo approved", "c1")], usage=(5, 1)))
    asking = check_response(client.responses.create(model="goose", input="print it"))
    assert asking.status == "completed" and [i.type for i in asking.output] == ["mcp_approval_request"]
    request = asking.output[0]
    assert (request.server_label, request.name, json.loads(request.arguments)) == (
        "developer", "shell", {"command": "echo approved"})
    assert asking.usage.input_tokens == 5
    fake_openai.add(Reply("It printed approved.", usage=(9, 2)))
    done = check_response(client.responses.create(model="goose", previous_response_id=asking.id, input=[
        {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]))
    assert [i.type for i in done.output] == ["mcp_call", "message"]
    call = done.output[0]
    assert call.approval_request_id == request.id and "approved" in call.output
    assert done.output_text == "It printed approved." and done.usage.input_tokens == 9
    assert done.conversation.id == asking.conversation.id
    assert_goose_session(dirs["sessions"] / f"{done.conversation.id}.jsonl")


def test_a_denied_call_does_not_run_and_shows_no_mcp_call(make_app, fake_openai, dirs):
    client = wsgi_client(make_app(mode="approve"))
    marker = dirs["work"] / "never"
    fake_openai.add(Reply("", tool_calls=[shell(f"touch {marker}", "c1")]))
    asking = client.responses.create(model="goose", input="touch it")
    fake_openai.add(Reply("I will not."))
    done = client.responses.create(model="goose", previous_response_id=asking.id, input=[
        {"type": "mcp_approval_response", "approval_request_id": asking.output[0].id, "approve": False}])
    assert [i.type for i in done.output] == ["message"] and done.output_text == "I will not."
    assert not marker.exists()
    with pytest.raises(openai.BadRequestError) as caught:  # answered already
        client.responses.create(model="goose", previous_response_id=asking.id, input=[
            {"type": "mcp_approval_response", "approval_request_id": "mcpr_other", "approve": True}])
    assert caught.value.body["param"] == "input[0].approval_request_id"


def test_background_answers_at_once_polls_and_cancels(make_app, fake_openai):
    client = wsgi_client(make_app())
    gate = Gate()
    fake_openai.add(Reply("too late", gate=gate))
    started = check_response(client.responses.create(model="goose", input="slow", background=True))
    assert started.status == "in_progress" and started.background is True
    gate.wait_reached()
    assert client.responses.retrieve(started.id).status == "in_progress"
    cancelled = check_response(client.responses.cancel(started.id))
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(started.id).status == "cancelled"
    gate.open()
    fake_openai.add(Reply("fine"))
    plain = client.responses.create(model="goose", input="quick")
    with pytest.raises(openai.BadRequestError, match="Only background responses"):
        client.responses.cancel(plain.id)


def test_stored_responses_survive_a_restart_and_store_false_keeps_none(make_app, fake_openai, dirs):
    first = wsgi_client(make_app())
    fake_openai.add(Reply("remembered"), Reply("forgotten"))
    kept = first.responses.create(model="goose", input="keep")
    loose = first.responses.create(model="goose", input="do not keep", store=False)
    assert loose.store is False and loose.output_text == "forgotten"
    again = wsgi_client(make_app())  # another process over the same data dir
    assert again.responses.retrieve(kept.id).model_dump() == kept.model_dump()
    with pytest.raises(openai.NotFoundError):
        again.responses.retrieve(loose.id)
    fake_openai.add(Reply("continued"))
    assert again.responses.create(model="goose", input="more", previous_response_id=kept.id).output_text == \
        "continued"


def test_a_turn_may_pick_its_own_model_without_changing_the_servers(make_app, fake_openai):
    app = make_app(api_keys=KEYS)
    admin, alice = wsgi_client(app, "ops-key"), wsgi_client(app, "alice-key")
    fake_openai.add(Reply("mini"), Reply("default"))
    assert admin.responses.create(model="goose:openai/gpt-4o-mini", input="x").model == "goose:openai/gpt-4o-mini"
    assert fake_openai.requests[-1].body["model"] == "gpt-4o-mini"
    alice.responses.create(model="goose", input="y")
    assert fake_openai.requests[-1].body["model"] == "gpt-4o", "the server's model is unchanged for others"
    with pytest.raises(openai.PermissionDeniedError) as caught:
        alice.responses.create(model="goose:openai/gpt-4o-mini", input="z")
    assert (caught.value.body["type"], caught.value.body["param"]) == ("permission_error", "model")
    # the refused request started nothing: the fake fails the test on a request it has no step for


@pytest.mark.parametrize("kwargs, param", [
    ({"model": "gpt-4o", "input": "x"}, "model"),
    ({"model": "goose:nosuch/m", "input": "x"}, "model"),
    ({"model": "goose", "input": ""}, "input"),
    ({"model": "goose", "input": [{"role": "assistant", "content": "x"}]}, "input"),
    ({"model": "goose", "input": [{"type": "function_call_output", "call_id": "c", "output": "o"}]}, "input[0].type"),
    ({"model": "goose", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "input[0].content[0]"),
    ({"model": "goose", "input": "x", "tools": [{"type": "mcp", "server_label": "s", "server_url": "http://x"}]},
     "tools"),
    ({"model": "goose", "input": "x", "background": True, "store": False}, "store"),
    ({"model": "goose", "input": "x", "metadata": {"k": "v" * 600}}, "metadata.k"),
    ({"model": "goose", "input": "x", "previous_response_id": "resp_1", "conversation": "c"}, "conversation"),
    ({"model": "goose", "input": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_x",
                                   "approve": True}]}, "previous_response_id"),
])
def test_bad_requests_are_openai_errors_naming_the_param(make_app, fake_openai, kwargs, param):
    client = wsgi_client(make_app())
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**kwargs)
    error = caught.value.body
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    assert fake_openai.requests == []


def test_wrong_keys_unknown_ids_and_busy_sessions_answer_in_openais_shape(make_app, fake_openai):
    app = make_app()
    with pytest.raises(openai.AuthenticationError) as caught:
        wsgi_client(app, "wrong").responses.create(model="goose", input="x")
    assert caught.value.code == "invalid_api_key" and caught.value.body["type"] == "invalid_request_error"
    client = wsgi_client(app)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_" + "0" * 32)
    assert missing.value.body == {"message": f"Response resp_{'0' * 32} not found", "type": "invalid_request_error",
                                  "param": None, "code": "not_found"}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("../../api_key")
    gate = Gate()
    fake_openai.add(Reply("slow", gate=gate))
    running = client.responses.create(model="goose", input="one", background=True)
    gate.wait_reached()
    with pytest.raises(openai.ConflictError) as busy:
        client.responses.create(model="goose", input="two", previous_response_id=running.id)
    assert busy.value.code == "session_busy"
    gate.open()
    assert client.responses.retrieve(running.id).status in ("in_progress", "completed")


def test_a_key_reaches_only_its_own_responses(make_app, fake_openai, dirs):
    app = make_app(api_keys=KEYS, mode="approve")
    alice, bob = wsgi_client(app, "alice-key"), wsgi_client(app, "bob-key")
    fake_openai.add(Reply("", tool_calls=[shell("echo secret", "c1")]))
    asking = alice.responses.create(model="goose", input="mine")
    for attempt in (lambda: bob.responses.retrieve(asking.id),
                    lambda: bob.responses.cancel(asking.id),
                    lambda: bob.responses.retrieve(asking.id, stream=True, starting_after=0),
                    lambda: bob.responses.create(model="goose", input="peek", previous_response_id=asking.id),
                    lambda: bob.responses.create(model="goose", previous_response_id=asking.id, input=[
                        {"type": "mcp_approval_response", "approval_request_id": asking.output[0].id,
                         "approve": True}])):
        with pytest.raises(openai.NotFoundError) as caught:
            attempt()
        assert caught.value.body["message"] == f"Response {asking.id} not found"
    with pytest.raises(openai.NotFoundError) as caught:
        bob.responses.create(model="goose", input="peek", conversation=asking.conversation.id)
    assert "not found" in caught.value.body["message"]
    ops = wsgi_client(app, "ops-key")  # an admin sees every session, so every response
    assert ops.responses.retrieve(asking.id).id == asking.id
    fake_openai.add(Reply("ok"))
    done = alice.responses.create(model="goose", previous_response_id=asking.id, input=[
        {"type": "mcp_approval_response", "approval_request_id": asking.output[0].id, "approve": True}])
    assert done.output_text == "ok", "bob's attempts changed nothing"
    assert API_KEY not in (dirs["data"] / "responses" / f"{asking.id}.json").read_text()


def test_an_unpolled_background_response_waiting_for_approval_can_be_answered(make_app, fake_openai):
    app = make_app(mode="approve")
    client, native = wsgi_client(app), app.test_client()
    fake_openai.add(Reply("", tool_calls=[shell("echo later", "c1")]))
    started = client.responses.create(model="goose", input="in the background", background=True)
    session = started.conversation.id
    wait_until(lambda: native.get(f"/session/{session}", headers={"x-api-key": API_KEY}).get_json()["state"]
               == "waiting_approval", what="the run to ask for approval")
    fake_openai.add(Reply("Ran it."))
    done = client.responses.create(model="goose", previous_response_id=started.id, input=[
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_c1", "approve": True}])
    assert [i.type for i in done.output] == ["mcp_call", "message"] and done.output_text == "Ran it."
    assert client.responses.retrieve(started.id).output[0].type == "mcp_approval_request"


def test_always_allow_holds_in_the_response_turns_of_the_key_that_chose_it_only(make_app, fake_openai):
    app = make_app(mode="approve", api_keys=KEYS)
    alice, bob = wsgi_client(app, "alice-key"), wsgi_client(app, "bob-key")
    fake_openai.add(Reply("", tool_calls=[shell("echo 1", "c1")]))
    asking = check_response(alice.responses.create(model="goose", input="run"))
    session = asking.conversation.id
    fake_openai.add(Reply("ran once"))
    confirmed = app.test_client().post(f"/session/{session}/confirm", json={"id": "c1", "action": "always_allow"},
                                       headers={"x-api-key": "alice-key"})
    assert confirmed.status_code == 200 and confirmed.get_json()["response"] == "ran once"
    fake_openai.add(Reply("", tool_calls=[shell("echo 2", "c2")]), Reply("ran again"))
    again = check_response(alice.responses.create(model="goose", input="again", conversation=session))
    assert again.output_text == "ran again", "a turn continuing alice's conversation is alice's too"
    fake_openai.add(Reply("", tool_calls=[shell("echo 3", "c3")]))
    asked = check_response(bob.responses.create(model="goose", input="run"))
    assert [i.type for i in asked.output] == ["mcp_approval_request"], "alice's choice only"
