"""Why an answer ended, on every provider: cut at the output limit (kept, with a warning, a cut call not run),
refused by a filter (an error, never an empty answer), a malformed call (retried once)."""

from __future__ import annotations

import pytest

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import create_provider
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.azure import AzureOpenAIProvider
from goose_api.providers.base import MAX_TOKENS, ProviderReply, ToolSpec
from goose_api.providers.google import GoogleProvider
from goose_api.providers.ollama import OllamaProvider
from goose_api.providers.openai import OpenAIProvider
from goose_api.providers.retry import RetryingProvider
from tests.fakes import AnthropicFake, AzureOpenAIFake, GoogleFake, GroqFake, OllamaFake, OpenAIFake, Reply, ToolCall

WRITE = ToolSpec("developer__write", "Write a file", {
    "type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}}})
CUT = {"openai": "length", "azure_openai": "length", "groq": "length", "anthropic": "max_tokens",
       "google": "MAX_TOKENS", "ollama": "length"}
FAKES = [(OpenAIFake, OpenAIProvider), (AzureOpenAIFake, AzureOpenAIProvider), (GroqFake, None),
         (AnthropicFake, AnthropicProvider), (GoogleFake, GoogleProvider), (OllamaFake, OllamaProvider)]


def build(fake, provider_class, **settings):
    settings = fake.settings(**settings)
    return provider_class(settings) if provider_class else create_provider(settings)


def answer(provider, stream: bool) -> ProviderReply:
    if not stream:
        return provider.complete("sys", [Message.user("write it")], [WRITE])
    return list(provider.stream("sys", [Message.user("write it")], [WRITE]))[-1]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fake_class, provider_class", FAKES, ids=lambda v: getattr(v, "provider", None) or "")
def test_an_answer_cut_at_the_output_limit_warns_and_its_cut_call_is_not_run(fake_class, provider_class, stream):
    with fake_class() as fake:
        # Arguments that parse, and are still only the start of what the model meant to write.
        fake.add(Reply("Writing the file", tool_calls=[ToolCall("developer__write", {"path": "a.txt"}, id="call_1")],
                       finish=CUT[fake.provider], stream=stream))
        reply = answer(build(fake, provider_class, max_tokens=50), stream)
        fake.assert_done()
    assert reply.stop_reason == MAX_TOKENS and reply.message.text() == "Writing the file"
    (request,) = reply.message.tool_requests()
    assert request["toolCall"]["status"] == "error" and "cut off at the output limit" in request["toolCall"]["error"]
    (warning,) = reply.warnings
    assert "50 tokens" in warning and "GOOSE_API_MAX_TOKENS" in warning


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fake_class, provider_class, finish", [
    (OpenAIFake, OpenAIProvider, "content_filter"), (AzureOpenAIFake, AzureOpenAIProvider, "content_filter"),
    (AnthropicFake, AnthropicProvider, "refusal"), (GoogleFake, GoogleProvider, "SAFETY"),
    (GoogleFake, GoogleProvider, "RECITATION"), (GoogleFake, GoogleProvider, "PROHIBITED_CONTENT")],
    ids=lambda v: v if isinstance(v, str) else "")
def test_a_filtered_answer_is_a_clear_error_not_an_empty_answer(fake_class, provider_class, finish, stream):
    with fake_class([Reply("", finish=finish, stream=stream)]) as fake:
        with pytest.raises(ProviderError) as caught:
            answer(build(fake, provider_class), stream)
        fake.assert_done()
    assert caught.value.kind == ProviderError.CONTENT_FILTER and not caught.value.retryable
    assert "rephrase" in caught.value.detail


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_prompt_gemini_blocks_is_a_clear_error(stream):
    with GoogleFake([Reply(blocked="SAFETY", stream=stream)]) as fake:
        with pytest.raises(ProviderError) as caught:
            answer(GoogleProvider(fake.settings()), stream)
        fake.assert_done()
    assert caught.value.kind == ProviderError.CONTENT_FILTER and "blockReason SAFETY" in caught.value.detail


def test_a_malformed_function_call_is_retried_once_then_reported():
    with GoogleFake([Reply(finish="MALFORMED_FUNCTION_CALL"), Reply("fine now")]) as fake:
        provider = RetryingProvider(GoogleProvider(fake.settings()), fake.settings(provider_retries=3),
                                    sleep=lambda s: None)
        assert answer(provider, False).message.text() == "fine now"
        fake.assert_done()
    with GoogleFake([Reply(finish="MALFORMED_FUNCTION_CALL"), Reply(finish="MALFORMED_FUNCTION_CALL")]) as fake:
        provider = RetryingProvider(GoogleProvider(fake.settings()), fake.settings(provider_retries=3),
                                    sleep=lambda s: None)
        with pytest.raises(ProviderError) as caught:
            answer(provider, False)
        fake.assert_done()  # one retry, not three: the settings' retries are for load, not for this
    assert caught.value.kind == ProviderError.INVALID_ANSWER and "MALFORMED_FUNCTION_CALL" in caught.value.detail


def test_the_warning_names_the_default_limit_when_none_is_configured():
    with AnthropicFake([Reply("It was a dark and", finish="max_tokens")]) as fake:
        reply = AnthropicProvider(fake.settings()).complete("", [Message.user("a story")], [])
        fake.assert_done()
    assert "4096 tokens" in reply.warnings[0] and reply.message.text() == "It was a dark and"
    with OpenAIFake([Reply("It was a dark and", finish="length")]) as fake:
        reply = OpenAIProvider(fake.settings()).complete("", [Message.user("a story")], [])
        fake.assert_done()
    assert "the model's default output limit" in reply.warnings[0]


@pytest.mark.parametrize("fake_class, provider_class", FAKES, ids=lambda v: getattr(v, "provider", None) or "")
def test_a_limit_reached_before_any_answer_is_an_error_not_an_empty_answer(fake_class, provider_class):
    """A reasoning model can spend the whole output limit thinking: there is nothing to save as the answer."""
    with fake_class() as fake:
        fake.add(Reply("", finish=CUT[fake.provider]))
        with pytest.raises(ProviderError) as caught:
            answer(build(fake, provider_class, max_tokens=16), False)
        fake.assert_done()
    assert caught.value.kind == ProviderError.BAD_REQUEST
    assert "before writing any answer" in caught.value.detail and "16 tokens" in caught.value.detail
