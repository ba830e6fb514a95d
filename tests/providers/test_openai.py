"""OpenAI chat completions: converters against recorded payloads, and the provider against the fake."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import openai_format as fmt
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ProviderReply, TextDelta, ToolCallReady, ToolSpec
from goose_api.providers.http import encode_json
from goose_api.providers.openai import OpenAIProvider
from goose_api.providers.retry import RetryingProvider
from goose_api.providers.wire_cache import WireCache
from tests.fakes.core import Fail, Reply, ToolCall
from tests.fakes.openai import OpenAIFake
from tests.support.gates import Gate

ROOT = Path(__file__).resolve().parents[2]
SHELL = ToolSpec("developer__shell", "Run a shell command", {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})

# A chat.completion answer as api.openai.com sends it (ids shortened).
RECORDED_TOOL_ANSWER = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [{"index": 0, "message": {
        "role": "assistant", "content": None, "refusal": None, "annotations": [],
        "tool_calls": [{"id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
                        "function": {"name": "developer__shell", "arguments": "{\"command\":\"ls -la\"}"}},
                       {"id": "call_broken", "type": "function",
                        "function": {"name": "developer__shell", "arguments": "{\"command\": \"ls"}}]},
        "logprobs": None, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
    "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"}


@pytest.fixture
def fake():
    with OpenAIFake() as server:
        yield server
        server.assert_done()


def test_recorded_tool_answer_converts_to_goose_tool_requests():
    reply = fmt.from_response(RECORDED_TOOL_ANSWER, "gpt-4o")
    good, broken = reply.message.content
    assert good == conv.tool_request("call_DdmO9pD3xa9XTPNJ32zg2hcA", "developer__shell", {"command": "ls -la"})
    assert broken["toolCall"]["status"] == "error" and "JSON" in broken["toolCall"]["error"]
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (82, 17, 99)
    assert reply.model == "gpt-4o-2024-08-06"


def test_text_answer_and_request_shape(fake):
    fake.add(Reply("Hello there", usage=(12, 3)))
    provider = OpenAIProvider(fake.settings(temperature=0.2, max_tokens=50))
    reply = provider.complete("You are goose.", [Message.user("hi")], [SHELL])
    assert reply.message.role == "assistant" and reply.message.text() == "Hello there"
    assert reply.usage.to_json() == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    request = fake.requests[0]
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["messages"] == [{"role": "system", "content": "You are goose."},
                                        {"role": "user", "content": "hi"}]
    assert request.body["tools"][0]["function"]["name"] == "developer__shell"
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.2, 50)


def test_tool_round_trip_sends_results_as_tool_messages(fake):
    fake.add(Reply(tool_calls=[ToolCall("developer__shell", {"command": "ls"}, id="call_1"),
                               ToolCall("developer__shell", {"command": "false"}, id="call_2")]),
             Reply("Two files."))
    provider = OpenAIProvider(fake.settings())
    history = [Message.user("list files")]
    first = provider.complete("sys", history, [SHELL])
    assert [i["id"] for i in first.message.tool_requests()] == ["call_1", "call_2"]
    history += [first.message, Message("user", [conv.tool_response("call_1", [conv.text("a.txt\nb.txt")]),
                                                conv.tool_error("call_2", "exit status 1")])]
    second = provider.complete("sys", history, [SHELL])
    assert second.message.text() == "Two files."
    wire = fake.requests[1].body["messages"]
    assert wire[2]["tool_calls"][0]["function"] == {"name": "developer__shell", "arguments": '{"command": "ls"}'}
    assert wire[3] == {"role": "tool", "tool_call_id": "call_1", "content": "a.txt\nb.txt"}
    assert wire[4] == {"role": "tool", "tool_call_id": "call_2", "content": "Error: exit status 1"}


def test_unparseable_arguments_become_an_error_request_and_still_make_a_valid_history(fake):
    fake.add(Reply(tool_calls=[ToolCall("developer__shell", '{"command": ', id="call_bad")]), Reply("Sorry."))
    provider = OpenAIProvider(fake.settings())
    first = provider.complete("sys", [Message.user("go")], [SHELL])
    (request,) = first.message.tool_requests()
    assert request["toolCall"]["status"] == "error"
    history = [Message.user("go"), first.message,
               Message("user", [conv.tool_error("call_bad", request["toolCall"]["error"])])]
    provider.complete("sys", history, [SHELL])
    wire = fake.requests[1].body["messages"]
    assert [m["role"] for m in wire] == ["system", "user", "user"]
    assert wire[2]["content"].startswith("Your tool call could not be run: Error: Could not parse")


def test_images_in_tool_results_follow_in_a_user_message(fake):
    fake.add(Reply("A cat."))
    history = [Message.user("look"), Message.assistant(conv.tool_request("call_1", "developer__screenshot", {})),
               Message("user", [conv.tool_response("call_1", [conv.text("shot"), conv.image("aGk=", "image/png")])])]
    OpenAIProvider(fake.settings()).complete("", history, [])
    wire = fake.requests[0].body["messages"]
    assert wire[2] == {"role": "tool", "tool_call_id": "call_1", "content": "shot"}
    assert wire[3]["content"] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]


def test_stream_yields_deltas_then_tool_calls_then_one_reply(fake):
    fake.add(Reply("Let me look.", tool_calls=[ToolCall("developer__shell", {"command": "ls -la"}, id="c1")],
                   usage=(40, 9), stream=True, chunk_size=4))
    events = list(OpenAIProvider(fake.settings()).stream("sys", [Message.user("files?")], [SHELL]))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "Let me look."
    ready = [e.content for e in events if isinstance(e, ToolCallReady)]
    assert ready == [conv.tool_request("c1", "developer__shell", {"command": "ls -la"})]
    assert isinstance(events[-1], ProviderReply)
    assert sum(isinstance(e, ProviderReply) for e in events) == 1
    assert events[-1].message.content == [conv.text("Let me look."), ready[0]]
    assert (events[-1].usage.input_tokens, events[-1].usage.output_tokens) == (40, 9)
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}


def test_o_series_models_get_reasoning_parameters(fake):
    fake.add(Reply("ok"), Reply("ok"))
    settings = fake.settings(model="o3-mini-high", temperature=0.5, max_tokens=100)
    OpenAIProvider(settings).complete("rules", [Message.user("hi")], [])
    body = fake.requests[0].body
    assert body["model"] == "o3-mini" and body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 100 and "temperature" not in body and "max_tokens" not in body
    assert body["messages"][0] == {"role": "developer", "content": "rules"}
    OpenAIProvider(settings.replace(model="o1")).complete("rules", [Message.user("hi")], [])
    assert "reasoning_effort" not in fake.requests[1].body  # the API's default, which every o-model takes


def test_organization_and_project_headers(fake):
    fake.add(Reply("ok"))
    settings = fake.settings(env={"OPENAI_ORGANIZATION": "org-1", "OPENAI_PROJECT": "proj-1"})
    OpenAIProvider(settings).complete("", [Message.user("hi")], [])
    assert fake.requests[0].headers["openai-organization"] == "org-1"
    assert fake.requests[0].headers["openai-project"] == "proj-1"


@pytest.mark.parametrize("step, kind", [
    (Fail(429, retry_after="0.25"), ProviderError.RATE_LIMIT),
    (Fail(400, code="context_length_exceeded"), ProviderError.CONTEXT_LENGTH),
    (Fail(500, "The server had an error while processing your request."), ProviderError.UNAVAILABLE),
    (Fail(503, "The engine is currently overloaded"), ProviderError.UNAVAILABLE),
    (Fail(400, "Invalid value for 'messages'"), ProviderError.BAD_REQUEST),
    (Fail(429, code="insufficient_quota"), ProviderError.QUOTA),  # not retryable: billing, not load
])
def test_error_answers_are_classified(fake, step, kind):
    fake.add(step)
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(fake.settings()).complete("", [Message.user("hi")], [])
    assert caught.value.kind == kind and caught.value.provider == "openai"
    assert caught.value.http_status == step.status
    if step.retry_after is not None:
        assert caught.value.retry_after == 0.25


def test_wrong_key_is_an_auth_error(fake):
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(fake.settings(env={"OPENAI_API_KEY": "sk-wrong"})).complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.AUTH and "Incorrect API key" in caught.value.detail


def test_missing_key_is_a_configuration_error_naming_the_variable(fake):
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIProvider(fake.settings(env={"OPENAI_API_KEY": ""}))


def test_unreachable_host_and_read_timeout_are_unavailable(fake):
    closed = OpenAIFake().start()
    settings = closed.settings()
    closed.stop()
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(settings).complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.UNAVAILABLE
    held = Gate()
    fake.add(Reply("late", gate=held))
    with pytest.raises(ProviderError) as caught:
        OpenAIProvider(fake.settings(read_timeout=0.2)).complete("", [Message.user("hi")], [])
    held.open()  # the answer comes after the client gave up
    assert caught.value.kind == ProviderError.UNAVAILABLE and "Timeout" in caught.value.detail


def test_stream_cut_midway_is_unavailable(fake):
    fake.add(Reply("a long answer that never ends", stream=True, drop_after=3))
    stream = OpenAIProvider(fake.settings()).stream("", [Message.user("hi")], [])
    assert next(stream) == TextDelta("a l")
    with pytest.raises(ProviderError) as caught:
        list(stream)
    assert caught.value.kind == ProviderError.UNAVAILABLE


def test_fake_rejects_a_history_with_an_unanswered_tool_call():
    with OpenAIFake([Reply("never sent")]) as server:
        history = [Message.user("go"), Message.assistant(conv.tool_request("call_9", "developer__shell", {})),
                   Message.user("next")]
        with pytest.raises(ProviderError) as caught:
            OpenAIProvider(server.settings()).complete("", history, [SHELL])
        assert caught.value.kind == ProviderError.BAD_REQUEST and "call_9" in caught.value.detail
        assert server.violations and server.steps
        with pytest.raises(AssertionError, match="not answered"):
            server.assert_done()


def test_one_log_line_per_call_without_the_key(fake, caplog):
    fake.add(Reply("ok", usage=(21, 4)), Fail(500, "boom"))
    provider = OpenAIProvider(fake.settings())
    with caplog.at_level("DEBUG", logger="goose_api.providers"):
        provider.complete("", [Message.user("secret prompt")], [])
        with pytest.raises(ProviderError):
            provider.complete("", [Message.user("hi")], [])
    calls = [r for r in caplog.records if r.getMessage().startswith("provider call")]
    assert len(calls) == 2
    assert calls[0].levelname == "INFO" and "provider=openai model=gpt-4o status=200" in calls[0].getMessage()
    assert "input_tokens=21 output_tokens=4" in calls[0].getMessage()
    assert calls[1].levelname == "WARNING" and "status=500 kind=server_unavailable" in calls[1].getMessage()
    assert all("test-key" not in r.getMessage() for r in caplog.records)
    assert all("secret prompt" not in r.getMessage() for r in caplog.records if r.levelno >= 20)


def test_fake_serves_another_process_through_its_server_env(fake, tmp_path):
    """The way a gunicorn under test uses a fake: by environment variables alone."""
    fake.add(Reply("from a child process"))
    code = ("import os; from goose_api.settings import Settings; from goose_api.providers import create_provider;"
            "from goose_api.conversation import Message;"
            "s = Settings.load(environ=dict(os.environ), cwd=os.environ['TMP_CWD']);"
            "print(create_provider(s).complete('', [Message.user('hi')], []).message.text())")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "TMP_CWD": str(tmp_path), **fake.server_env()}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from a child process"


def test_history_conversion_is_cached_per_message_and_follows_the_invalid_ids():
    cache = WireCache()
    answer = Message("user", [conv.tool_response("call_1", [conv.text("done")])])
    valid = [Message.user("go"), Message.assistant(conv.tool_request("call_1", "developer__shell", {})), answer]
    first, again = fmt.to_messages("sys", valid, cache=cache), fmt.to_messages("sys", valid, cache=cache)
    assert first == again and first[3] is again[3]  # the cached wire dict, not a new conversion
    assert first[3] == {"role": "tool", "tool_call_id": "call_1", "content": "done"}
    broken = [valid[0], Message.assistant(conv.tool_request_error("call_1", "bad JSON")), answer]
    assert fmt.to_messages("sys", broken, cache=cache)[-1] == {
        "role": "user", "content": "Your tool call could not be run: done"}
    answer.content = [conv.tool_response("call_1", [conv.text("changed")])]
    assert fmt.to_messages("sys", valid, cache=cache)[3]["content"] == "changed"
    assert all("_openai_wire" not in m.__dict__ for m in valid)  # nothing hung on the messages


def test_encoded_body_is_the_same_json_as_the_body():
    history = [Message.user("héllo ✓"), Message.assistant(conv.tool_request("call_1", "developer__shell",
                                                                             {"command": "echo ✓"})),
               Message("user", [conv.tool_response("call_1", [conv.text("✓")])]), Message.assistant("ok")]
    body = fmt.chat_body("gpt-4o", "sys", history, [SHELL], temperature=0.5, max_tokens=10, stream=True)
    encoded = encode_json(body)
    assert encoded.isascii() and json.loads(encoded) == json.loads(json.dumps(body))
    assert json.loads(encode_json({"plain": [1, "é"], "n": None})) == {"plain": [1, "é"], "n": None}
    assert encode_json({}) == b"{}"


def test_proxies_from_the_environment_are_still_used(fake, monkeypatch):
    fake.add(Reply("through the proxy"))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake.base_url)  # the fake answers the proxied request itself
    settings = fake.settings()
    provider = OpenAIProvider(settings.replace(env={**settings.env, "OPENAI_HOST": "http://provider.invalid"}))
    assert provider.complete("sys", [Message.user("hi")], []).message.text() == "through the proxy"
    assert fake.requests[0].headers["host"] == "provider.invalid"


@pytest.mark.parametrize("headers, wait", [
    ({"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "0.75s"}, 0.75),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "0.5s",
      "x-ratelimit-remaining-tokens": "100", "x-ratelimit-reset-tokens": "6m0s"}, 0.5),
    ({"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1m30s"}, 0.02)])
def test_a_429_waits_until_the_exhausted_limit_resets(fake, headers, wait):
    fake.add(Fail(429, headers=headers), Reply("ok"))
    waits = []
    provider = RetryingProvider(OpenAIProvider(fake.settings()), fake.settings(provider_retry_max_wait=5),
                                sleep=waits.append)
    assert provider.complete("", [Message.user("hi")], []).message.text() == "ok"
    assert waits == [pytest.approx(wait)]


def test_a_reset_longer_than_the_max_wait_ends_the_retries(fake):
    fake.add(Fail(429, headers={"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}))
    provider = RetryingProvider(OpenAIProvider(fake.settings()), fake.settings(provider_retry_max_wait=5),
                                sleep=lambda s: pytest.fail("waited"))
    with pytest.raises(ProviderError) as caught:
        provider.complete("", [Message.user("hi")], [])
    assert caught.value.retry_after == 360 and caught.value.headers == {"Retry-After": "360"}


def test_parallel_streamed_calls_reusing_index_zero_are_kept_apart(fake):
    fake.add(Reply(tool_calls=[ToolCall("developer__shell", {"command": "ls"}, id="call_a"),
                               ToolCall("developer__shell", {"command": "pwd"}, id="call_b")],
                   stream=True, index_zero=True, chunk_size=4))
    events = list(OpenAIProvider(fake.settings()).stream("", [Message.user("go")], [SHELL]))
    assert [r["id"] for r in events[-1].message.tool_requests()] == ["call_a", "call_b"]
    assert [tc.call_arguments(r) for r in events[-1].message.tool_requests()] == [{"command": "ls"}, {"command": "pwd"}]
    assert [e.content["id"] for e in events if isinstance(e, ToolCallReady)] == ["call_a", "call_b"]


def test_cached_prompt_tokens_are_reported(fake):
    fake.add(Reply("ok", usage=(2000, 5), usage_details={"prompt_tokens_details": {"cached_tokens": 1536}}))
    usage = OpenAIProvider(fake.settings()).complete("", [Message.user("hi")], []).usage
    assert (usage.input_tokens, usage.cache_read_tokens) == (2000, 1536)


def test_the_cache_is_the_providers_and_lets_go_of_messages_that_are_gone(fake):
    fake.add(Reply("one"), Reply("two"))
    provider = OpenAIProvider(fake.settings())
    history = [Message.user(f"message {n}") for n in range(5)]
    provider.complete("", history, [])
    assert len(provider.wire_cache) == 5
    kept = [Message.user("another")]
    provider.complete("", kept, [])
    del history
    gc.collect()
    assert len(provider.wire_cache) == 1 and kept


def test_the_fake_refuses_unknown_parameters_as_the_api(fake):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", "reasoning_content": "x"}],
            "temprature": 0.5}
    answer = requests.post(fake.base_url + "/v1/chat/completions", json=body, timeout=5,
                           headers={"authorization": "Bearer test-key"})
    assert answer.status_code == 400
    assert "body.temprature: unknown parameter" in answer.json()["error"]["message"]
    assert "reasoning_content: unknown parameter" in answer.json()["error"]["message"]
    fake.violations.clear()
