"""Azure OpenAI, the named OpenAI-compatible hosts and ``openai_compatible``, against their fakes."""

from __future__ import annotations

import re

import pytest
import requests

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import create_provider
from goose_api.providers.azure import DEFAULT_API_VERSION, AzureOpenAIProvider
from goose_api.providers.base import ProviderReply, TextDelta, ToolSpec
from goose_api.providers.compatible import mistral_call_id
from tests.fakes.compatible import DeepSeekFake, GroqFake, MistralFake, compatible_fake
from tests.fakes.core import Fail, Reply, ToolCall
from tests.fakes.openai import AzureOpenAIFake, CompatibleFake

HOSTS = [("openrouter", "OPENROUTER", "/api/v1/chat/completions"),
         ("groq", "GROQ", "/openai/v1/chat/completions"),
         ("deepseek", "DEEPSEEK", "/v1/chat/completions"),
         ("xai", "XAI", "/v1/chat/completions"),
         ("mistral", "MISTRAL", "/v1/chat/completions")]


@pytest.fixture
def azure():
    with AzureOpenAIFake() as server:
        yield server
        server.assert_done()


def test_azure_calls_the_deployment_with_api_key_and_version(azure):
    azure.add(Reply("hi from azure", usage=(5, 3)))
    provider = AzureOpenAIProvider(azure.settings())
    reply = provider.complete("sys", [Message.user("hi")], [])
    assert provider.model == "gpt4o-prod" and reply.message.text() == "hi from azure"
    request = azure.requests[0]
    assert request.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert request.query == {"api-version": DEFAULT_API_VERSION} and request.headers["api-key"] == "test-key"
    assert "authorization" not in request.headers


def test_azure_tool_round_trip_and_stream(azure):
    azure.add(Reply(tool_calls=[ToolCall("developer__shell", {"command": "ls"}, id="call_a")]),
              Reply("done", stream=True))
    provider = AzureOpenAIProvider(azure.settings(env={"AZURE_OPENAI_API_VERSION": "2025-01-01-preview"}))
    first = provider.complete("", [Message.user("go")], [])
    history = [Message.user("go"), first.message, Message("user", [conv.tool_response("call_a", [conv.text("x")])])]
    events = list(provider.stream("", history, []))
    assert isinstance(events[-1], ProviderReply) and events[-1].message.text() == "done"
    assert azure.requests[1].query == {"api-version": "2025-01-01-preview"}
    assert azure.requests[1].body["messages"][2] == {"role": "tool", "tool_call_id": "call_a", "content": "x"}


def test_azure_wrong_key_is_auth(azure):
    with pytest.raises(ProviderError) as caught:
        AzureOpenAIProvider(azure.settings(env={"AZURE_OPENAI_API_KEY": "nope"})).complete("", [Message.user("x")], [])
    assert caught.value.kind == ProviderError.AUTH and "subscription key" in caught.value.detail


def test_azure_names_each_missing_variable(azure):
    for var in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_API_KEY"):
        with pytest.raises(ConfigurationError, match=var):
            AzureOpenAIProvider(azure.settings(env={var: ""}))


@pytest.mark.parametrize("name, prefix, path", HOSTS)
def test_named_hosts_speak_openai_at_their_own_path(name, prefix, path):
    with compatible_fake(name, [Reply("hello", usage=(4, 1)), Reply("streamed", stream=True),
                                Fail(429, retry_after=0)]) as fake:
        provider = create_provider(fake.settings(model="some-model"))
        assert provider.name == name and provider.model == "some-model"
        assert provider.complete("", [Message.user("hi")], []).message.text() == "hello"
        events = list(provider.stream("", [Message.user("hi")], []))
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"
        with pytest.raises(ProviderError) as caught:
            provider.complete("", [Message.user("hi")], [])
        assert caught.value.kind == ProviderError.RATE_LIMIT
        assert fake.requests[0].path == path and fake.requests[0].headers["authorization"] == "Bearer test-key"
        fake.assert_done()


def test_openai_compatible_needs_a_host_but_no_key():
    with CompatibleFake("openai_compatible", "OPENAI_COMPATIBLE", "/v1/chat/completions",
                        [Reply("local answer", stream=True)], key_required=False) as fake:
        provider = create_provider(fake.settings(model="llama-3.2-1b"))
        events = list(provider.stream("", [Message.user("hi")], []))
        assert events[-1].message.text() == "local answer"
        assert "stream_options" not in fake.requests[0].body
        fake.assert_done()
        with pytest.raises(ConfigurationError, match="OPENAI_COMPATIBLE_HOST"):
            create_provider(fake.settings(env={"OPENAI_COMPATIBLE_HOST": ""}))


def test_openai_compatible_sends_the_optional_key_when_set():
    with CompatibleFake("openai_compatible", "OPENAI_COMPATIBLE", "/v1/chat/completions", [Reply("ok")]) as fake:
        create_provider(fake.settings(env={"OPENAI_COMPATIBLE_API_KEY": "test-key"})).complete(
            "", [Message.user("hi")], [])
        assert fake.requests[0].headers["authorization"] == "Bearer test-key"
        fake.assert_done()


# --- Mistral ----------------------------------------------------------------------------

SHELL = ToolSpec("developer__shell", "Run a shell command", {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})


def test_mistral_streams_without_stream_options_and_still_counts_tokens():
    with MistralFake([Reply("streamed", usage=(12, 3), stream=True)]) as fake:
        events = list(create_provider(fake.settings()).stream("", [Message.user("hi")], []))
        fake.assert_done()  # Mistral answers stream_options with a 422 extra_forbidden
    assert "stream_options" not in fake.requests[0].body
    assert events[-1].message.text() == "streamed" and events[-1].usage.input_tokens == 12


def test_mistral_refuses_stream_options_with_422_as_the_real_service():
    with MistralFake([Reply("never")]) as fake:
        body = {"model": "mistral-large-latest", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "hi"}]}
        answer = requests.post(fake.base_url + "/v1/chat/completions", json=body,
                               headers={"authorization": "Bearer test-key"}, timeout=5)
        assert answer.status_code == 422
        assert answer.json()["message"]["detail"][0]["loc"] == ["body", "stream_options"]
        fake.violations.clear()
        fake.steps.clear()


def test_a_session_started_elsewhere_continues_on_mistral_with_its_call_ids_mapped():
    """OpenAI's ids (call_...) and goose's own are not Mistral's 9 letters/digits: mapped alike both ways."""
    history = [Message.user("list"),
               Message.assistant(conv.tool_request("call_DdmO9pD3xa9XTPNJ32zg2hcA", "developer__shell", {"command": "ls"}),
                                 conv.tool_request("toolu_01A09q90qw90lq917835lq9", "developer__shell", {"command": "pwd"})),
               Message("user", [conv.tool_response("call_DdmO9pD3xa9XTPNJ32zg2hcA", [conv.text("a.txt")]),
                                conv.tool_response("toolu_01A09q90qw90lq917835lq9", [conv.text("/w")])]),
               Message.assistant("done"), Message.user("again")]
    with MistralFake([Reply("ok"), Reply("ok")]) as fake:
        provider = create_provider(fake.settings())
        provider.complete("", history, [SHELL])
        provider.complete("", history, [SHELL])
        fake.assert_done()
    first, second = (r.body["messages"] for r in fake.requests)
    call_ids = [c["id"] for c in first[1]["tool_calls"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in call_ids) and len(set(call_ids)) == 2
    assert [first[2]["tool_call_id"], first[3]["tool_call_id"]] == call_ids
    assert second == first  # the same mapping on every request
    assert mistral_call_id("abcDEF123") == "abcDEF123"  # an id Mistral gave is kept


def test_mistral_never_gets_a_user_message_right_after_a_tool_message():
    """After a cancel (tool results, then the next prompt) or with a tool's image, the user would follow a tool."""
    cancelled = [Message.user("run it"), Message.assistant(conv.tool_request("abcDEF123", "developer__shell", {})),
                 Message("user", [conv.tool_error("abcDEF123", "cancelled")]), Message.user("never mind, hi")]
    with MistralFake([Reply("hello"), Reply("a cat")]) as fake:
        provider = create_provider(fake.settings())
        provider.complete("", cancelled, [SHELL])
        with_image = [Message.user("look"), Message.assistant(conv.tool_request("abcDEF124", "developer__shell", {})),
                      Message("user", [conv.tool_response("abcDEF124", [conv.image("aGk=", "image/png")])])]
        create_provider(fake.settings(model="pixtral-large-latest")).complete("", with_image, [SHELL])
        fake.assert_done()
    roles = [m["role"] for m in fake.requests[0].body["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]
    assert [m["role"] for m in fake.requests[1].body["messages"]] == ["user", "assistant", "tool", "assistant", "user"]


def test_mistral_tool_round_trip_through_the_strict_fake():
    with MistralFake([Reply(tool_calls=[ToolCall("developer__shell", {"command": "ls"})]), Reply("two files")]) as fake:
        provider = create_provider(fake.settings())
        first = provider.complete("", [Message.user("ls")], [SHELL])
        (request,) = first.message.tool_requests()
        history = [Message.user("ls"), first.message, Message("user", [conv.tool_response(request["id"], [conv.text("a b")])])]
        assert provider.complete("", history, [SHELL]).message.text() == "two files"
        fake.assert_done()


# --- DeepSeek ----------------------------------------------------------------------------

def test_deepseek_reasoning_is_kept_and_sent_back_on_tool_call_turns(tmp_path):
    with DeepSeekFake([Reply(tool_calls=[ToolCall("developer__shell", {"command": "date"}, id="call_00")],
                             reasoning="The user wants the date; run date."),
                       Reply("It is noon.", reasoning="The tool said noon.", stream=True)]) as fake:
        provider = create_provider(fake.settings())
        first = provider.complete("", [Message.user("date?")], [SHELL])
        assert first.message.content[0] == conv.thinking("The user wants the date; run date.")
        assert first.message.text() == ""  # reasoning is not the answer
        history = [Message.user("date?"), Message.from_json(first.message.to_json()),  # as read back from a file
                   Message("user", [conv.tool_response("call_00", [conv.text("12:00")])])]
        final = list(provider.stream("", history, [SHELL]))[-1]
        fake.assert_done()  # DeepSeek answers 400 when a tool-call turn's reasoning is not sent back
    assert fake.requests[1].body["messages"][1]["reasoning_content"] == "The user wants the date; run date."
    assert final.message.text() == "It is noon." and final.message.content[0]["thinking"] == "The tool said noon."


def test_deepseek_takes_text_only():
    with DeepSeekFake([Reply("no")]) as fake:
        history = [Message.user("look", conv.image("aGk=", "image/png"))]
        create_provider(fake.settings(model="deepseek-chat")).complete("", history, [])
        fake.assert_done()
    assert fake.requests[0].body["messages"][0]["content"] == (
        "look\n\n[an image (image/png) was left out: the model deepseek-chat does not take images]")


def test_deepseek_cache_hits_are_reported():
    with DeepSeekFake([Reply("ok", usage=(100, 5), usage_details={"prompt_cache_hit_tokens": 80,
                                                                  "prompt_cache_miss_tokens": 20})]) as fake:
        usage = create_provider(fake.settings()).complete("", [Message.user("hi")], []).usage
        fake.assert_done()
    assert (usage.input_tokens, usage.cache_read_tokens) == (100, 80)


# --- Groq ---------------------------------------------------------------------------------

def test_groq_gets_plain_string_content_and_no_unknown_fields():
    history = [Message.user("date?"), Message("assistant", [conv.thinking("hmm"), conv.tool_request(
                   "call_1", "developer__shell", {"command": "date"})]),
               Message("user", [conv.tool_response("call_1", [conv.text("noon"), conv.image("aGk=", "image/png")])])]
    with GroqFake([Reply("noon")]) as fake:
        create_provider(fake.settings()).complete("sys", history, [SHELL])
        fake.assert_done()  # reasoning fields and image parts are refused by Groq for this model
    assert all(isinstance(m["content"], str) or m["content"] is None for m in fake.requests[0].body["messages"])
