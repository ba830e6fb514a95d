"""Azure OpenAI, the named OpenAI-compatible hosts and ``openai_compatible``, against their fakes."""

from __future__ import annotations

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import create_provider
from goose_api.providers.azure import DEFAULT_API_VERSION, AzureOpenAIProvider
from goose_api.providers.base import ProviderReply, TextDelta
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
    with CompatibleFake(name, prefix, path, [Reply("hello", usage=(4, 1)), Reply("streamed", stream=True),
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
