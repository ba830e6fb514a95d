"""Anthropic Messages API: converters against recorded payloads, and the provider against the fake."""

from __future__ import annotations

import pytest
import requests

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import anthropic as wire
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.base import ProviderReply, TextDelta, ToolCallReady, ToolSpec
from goose_api.providers.retry import RetryingProvider
from tests.fakes.anthropic import AnthropicFake
from tests.fakes.core import Fail, Reply, ToolCall

SHELL = ToolSpec("developer__shell", "Run a shell command", {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})

# A Messages API answer as api.anthropic.com sends it.
RECORDED = {
    "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
    "content": [{"type": "text", "text": "I'll check the weather."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "weather__get",
                 "input": {"location": "San Francisco, CA", "unit": "celsius"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 472, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 28,
              "output_tokens": 91, "service_tier": "standard"}}


@pytest.fixture
def fake():
    with AnthropicFake() as server:
        yield server
        server.assert_done()


def test_recorded_answer_converts_text_tool_use_and_cache_aware_usage():
    reply = wire.from_response(RECORDED)
    assert reply.message.content == [
        conv.text("I'll check the weather."),
        conv.tool_request("toolu_01A09q90qw90lq917835lq9", "weather__get",
                          {"location": "San Francisco, CA", "unit": "celsius"})]
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (600, 91, 691)


def test_consecutive_same_role_messages_are_merged_with_results_first():
    history = [Message.user("first"), Message.user("second"),
               Message.assistant("thinking", conv.tool_request("t1", "developer__shell", {"command": "ls"})),
               Message.user("an aside"), Message("user", [conv.tool_response("t1", [conv.text("ok")])])]
    messages = wire.to_messages(history)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["text"] for b in messages[0]["content"]] == ["first", "second"]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "text"]


def test_text_answer_and_request_shape(fake):
    fake.add(Reply("Hello!", usage=(20, 4)))
    reply = AnthropicProvider(fake.settings()).complete("You are goose.", [Message.user("hi")], [SHELL])
    assert reply.message.text() == "Hello!" and reply.usage.total_tokens == 24
    request = fake.requests[0]
    assert request.headers["x-api-key"] == "test-key" and request.headers["anthropic-version"] == "2023-06-01"
    assert request.body["system"] == [{"type": "text", "text": "You are goose.", "cache_control": {"type": "ephemeral"}}]
    assert request.body["max_tokens"] == 4096
    assert request.body["tools"][0]["input_schema"]["required"] == ["command"]


def test_tool_round_trip_with_a_failed_result(fake):
    fake.add(Reply("Running.", tool_calls=[ToolCall("developer__shell", {"command": "ls"}, id="toolu_1"),
                                           ToolCall("developer__shell", {"command": "rm -rf /"}, id="toolu_2")]),
             Reply("Done."))
    provider = AnthropicProvider(fake.settings())
    history = [Message.user("go")]
    first = provider.complete("sys", history, [SHELL])
    assert [r["id"] for r in first.message.tool_requests()] == ["toolu_1", "toolu_2"]
    history += [first.message, Message("user", [conv.tool_response("toolu_1", [conv.text("a.txt")]),
                                                conv.tool_error("toolu_2", "declined")])]
    provider.complete("sys", history, [SHELL])
    sent = fake.requests[1].body["messages"]
    assert sent[1]["content"][1] == {"type": "tool_use", "id": "toolu_1", "name": "developer__shell",
                                     "input": {"command": "ls"}}
    assert sent[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.txt"}]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "declined", "is_error": True,
         "cache_control": {"type": "ephemeral"}}]  # the last turn: the next call reads up to here from the cache


def test_stream_yields_deltas_tool_calls_and_usage(fake):
    fake.add(Reply("Checking now", tool_calls=[ToolCall("developer__shell", {"command": "pwd"}, id="toolu_s")],
                   usage=(50, 12), stream=True, chunk_size=5))
    events = list(AnthropicProvider(fake.settings()).stream("sys", [Message.user("where?")], [SHELL]))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Checking now"
    assert [e.content for e in events if isinstance(e, ToolCallReady)] == [
        conv.tool_request("toolu_s", "developer__shell", {"command": "pwd"})]
    final = events[-1]
    assert isinstance(final, ProviderReply) and final.message.text() == "Checking now"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (50, 12)


@pytest.mark.parametrize("step, kind", [
    (Fail(401, code="auth"), ProviderError.AUTH),
    (Fail(429, "Number of request tokens has exceeded your per-minute rate limit", retry_after=3),
     ProviderError.RATE_LIMIT),
    (Fail(400, code="context_length_exceeded"), ProviderError.CONTEXT_LENGTH),
    (Fail(529, code="overloaded"), ProviderError.UNAVAILABLE),
    (Fail(500, "Internal server error"), ProviderError.UNAVAILABLE),
    (Fail(400, "messages.0.content.0.text: field required"), ProviderError.BAD_REQUEST),
])
def test_error_answers_are_classified(fake, step, kind):
    fake.add(step)
    with pytest.raises(ProviderError) as caught:
        AnthropicProvider(fake.settings()).complete("", [Message.user("hi")], [])
    assert caught.value.kind == kind and caught.value.http_status == step.status


def test_error_event_inside_a_stream_is_classified(fake):
    fake.add(Fail(529, code="overloaded", in_stream=True))
    with pytest.raises(ProviderError) as caught:
        list(AnthropicProvider(fake.settings()).stream("", [Message.user("hi")], []))
    assert caught.value.kind == ProviderError.UNAVAILABLE and "Overloaded" in caught.value.detail


def test_fake_requires_the_version_header_and_alternating_roles(fake):
    body = {"model": "claude-sonnet-4-0", "max_tokens": 10,
            "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    answer = requests.post(fake.base_url + "/v1/messages", json=body, headers={"x-api-key": "test-key"}, timeout=5)
    assert answer.status_code == 400
    assert "anthropic-version" in answer.json()["error"]["message"]
    assert "alternate" in answer.json()["error"]["message"]
    fake.violations.clear()


def test_prompt_caching_marks_system_tools_and_the_last_turn(fake):
    fake.add(Reply("ok"), Reply("ok"))
    provider = AnthropicProvider(fake.settings())
    other = ToolSpec("memory__remember", "Remember", {"type": "object", "properties": {}})
    history = [Message.user("one"), Message.assistant("two"), Message.user("three")]
    provider.complete("sys", history, [SHELL, other])
    body = fake.requests[0].body
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in body["tools"][0] and body["tools"][1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1] == {"type": "text", "text": "three", "cache_control": {"type": "ephemeral"}}
    assert all("cache_control" not in b for m in body["messages"][:-1] for b in m["content"])
    provider.complete("", [Message.user("hi")], [])  # no system, no tools: one breakpoint
    assert fake.requests[1].body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}


def test_cache_reads_and_writes_are_in_the_usage(fake):
    fake.add(Reply("ok", usage=(12, 3), usage_details={"cache_read_input_tokens": 2000,
                                                        "cache_creation_input_tokens": 150}, stream=True))
    final = list(AnthropicProvider(fake.settings()).stream("sys", [Message.user("hi")], []))[-1]
    usage = final.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (2162, 2000, 150)
    assert usage.to_json() == {"input_tokens": 2162, "output_tokens": 3, "total_tokens": 2165,
                               "cache_read_tokens": 2000, "cache_write_tokens": 150}


@pytest.mark.parametrize("message", [
    "You have reached your specified API usage limits. You will regain access on 2026-12-01 at 00:00 UTC.",
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
    "purchase credits.",
    "Extra usage is required for long context requests."])
def test_spend_limits_are_not_retried(fake, message):
    fake.add(Fail(429, message, retry_after=1))
    waits = []
    provider = RetryingProvider(AnthropicProvider(fake.settings()), fake.settings(provider_retries=3),
                                sleep=waits.append)
    with pytest.raises(ProviderError) as caught:
        provider.complete("", [Message.user("hi")], [])
    assert caught.value.kind == ProviderError.QUOTA and waits == [] and not caught.value.retryable


def test_the_fake_refuses_more_than_four_cache_breakpoints(fake):
    blocks = [{"type": "text", "text": f"b{n}", "cache_control": {"type": "ephemeral"}} for n in range(5)]
    body = {"model": "claude-sonnet-4-0", "max_tokens": 10, "messages": [{"role": "user", "content": blocks}]}
    answer = requests.post(fake.base_url + "/v1/messages", json=body, timeout=5,
                           headers={"x-api-key": "test-key", "anthropic-version": "2023-06-01"})
    assert answer.status_code == 400 and "maximum of 4 blocks" in answer.json()["error"]["message"]
    fake.violations.clear()
