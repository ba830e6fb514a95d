"""A prompt too long for the window, as each service words it: one test per row of ``failures.CONTEXT_OVERFLOW``.

Each row is served by the fake of the provider that meets it, in that
service's error body, and must come out as CONTEXT_LENGTH (the agent then
compacts the history and tries again).
"""

from __future__ import annotations

import pytest

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers import create_provider
from goose_api.providers.failures import CONTEXT_OVERFLOW
from tests.fakes import AnthropicFake, Fail, GoogleFake, OllamaFake, OpenAIFake, compatible_fake

# row -> (fake that serves it, HTTP status, the service's message)
SAMPLES = {
    ("openai", "context_length_exceeded"): (OpenAIFake, 400, None),  # the fake's own body carries the code
    ("openai", "maximum context length"): (
        lambda: compatible_fake("deepseek"), 400,
        "This model's maximum context length is 65536 tokens. However, you requested 70211 tokens (66115 in the "
        "messages, 4096 in the completion). Please reduce the length of the messages or completion."),
    ("anthropic", "prompt is too long"): (AnthropicFake, 400, "prompt is too long: 208310 tokens > 200000 maximum"),
    ("anthropic", "input length and `max_tokens` exceed context limit"): (
        AnthropicFake, 400, "input length and `max_tokens` exceed context limit: 187254 + 20000 > 200000, "
                            "decrease input length or `max_tokens` and try again"),
    ("xai", "maximum prompt length"): (
        lambda: compatible_fake("xai"), 400,
        "This model's maximum prompt length is 131072 but the request contains 145320 tokens."),
    ("google", "exceeds the maximum number of tokens"): (
        GoogleFake, 400, "The input token count (1250000) exceeds the maximum number of tokens allowed (1048576)."),
    ("ollama", "exceeds the context length"): (OllamaFake, 400, "the input length exceeds the context length"),
    ("mistral", "too large for model with"): (
        lambda: compatible_fake("mistral"), 400,
        "Prompt contains 140212 tokens and 0 draft tokens, too large for model with 131072 maximum context length"),
    ("vllm", "is too long to fit into the model"): (
        lambda: compatible_fake("openai_compatible"), 400,
        "The prompt (total length 25938) is too long to fit into the model (context length 4096). Make sure that "
        "`max_model_len` is no smaller than the number of text tokens plus multimodal tokens."),
    ("llama.cpp", "exceeds the available context size"): (
        lambda: compatible_fake("openai_compatible"), 400,
        "the request exceeds the available context size, try increasing it"),
    ("lm studio", "context length of only"): (
        lambda: compatible_fake("openai_compatible"), 400,
        "Trying to keep the first 5120 tokens when context the overflows. However, the model is loaded with "
        "context length of only 4096 tokens, which is not enough. Try to load the model with a larger context "
        "length, or provide a shorter input"),
    ("openai-compatible", "exceeds the context window"): (
        lambda: compatible_fake("openrouter"), 400, "This request (141000 tokens) exceeds the context window"),
}


def test_every_row_has_a_sample_and_every_sample_a_row():
    assert set(SAMPLES) == set(CONTEXT_OVERFLOW)


@pytest.mark.parametrize("row", CONTEXT_OVERFLOW, ids=lambda row: f"{row[0]}: {row[1]}")
def test_each_services_overflow_message_is_context_length(row):
    make_fake, status, message = SAMPLES[row]
    step = Fail(status, code="context_length_exceeded") if message is None else Fail(status, message)
    with make_fake() as fake:
        fake.add(step)
        with pytest.raises(ProviderError) as caught:
            create_provider(fake.settings()).complete("", [Message.user("a very long prompt")], [])
        fake.assert_done()
    assert caught.value.kind == ProviderError.CONTEXT_LENGTH, caught.value.detail
    assert row[1] in caught.value.detail.lower() or message is None
