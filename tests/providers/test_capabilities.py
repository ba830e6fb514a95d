"""Which models take images (a table, overridden by ``model_capabilities``), and what a text-only model
is sent instead of a tool's image: a short note (the session keeps the image)."""

from __future__ import annotations

import copy

import pytest

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ConfigurationError
from goose_api.providers import create_provider
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.capabilities import context_limit, takes_images
from goose_api.providers.google import GoogleProvider
from goose_api.providers.ollama import OllamaProvider
from goose_api.providers.openai import OpenAIProvider
from goose_api.settings import Settings
from tests.fakes import AnthropicFake, GoogleFake, OllamaFake, OpenAIFake, Reply, compatible_fake

SHOT = [Message.user("what is on screen?"),
        Message.assistant(conv.tool_request("call_shot1", "developer__screenshot", {})),
        Message("user", [conv.tool_response("call_shot1", [conv.text("took it"), conv.image("aGk=", "image/png")])])]
NOTE = "[an image (image/png) was left out: the model {} does not take images]"


@pytest.mark.parametrize("provider, model, images", [
    ("openai", "gpt-4o", True), ("openai", "o3-mini", False), ("openai", "gpt-5-mini", True),
    ("deepseek", "deepseek-chat", False), ("deepseek", "some-future-model", False),
    ("groq", "llama-3.3-70b-versatile", False), ("groq", "meta-llama/llama-4-scout-17b-16e-instruct", True),
    ("anthropic", "claude-sonnet-4-0", True), ("google", "gemini-2.5-flash", True),
    ("ollama", "qwen2.5", False), ("ollama", "qwen2.5vl:7b", True), ("ollama", "llama3.2-vision", True),
    ("xai", "grok-3", False), ("mistral", "mistral-large-latest", False), ("mistral", "pixtral-large-latest", True),
    ("openai_compatible", "my-own-model", True)])
def test_the_image_table(provider, model, images):
    assert takes_images(provider, model) is images


def test_model_capabilities_override_the_table_by_glob():
    settings = Settings(model_capabilities={"my-*": {"images": False, "context_limit": 16_000},
                                            "deepseek-vl*": {"images": True}})
    assert not takes_images("openai_compatible", "my-own-model", settings)
    assert takes_images("deepseek", "deepseek-vl2", settings)
    assert context_limit("my-own-model", settings) == 16_000 and context_limit("gpt-4o", settings) == 128_000


@pytest.mark.parametrize("value", [{"x": True}, {"x": {"images": "yes"}}, {"x": {"context_limit": 0}},
                                   {"x": {"vision": True}}])
def test_bad_model_capabilities_are_refused_at_start(value):
    with pytest.raises(ConfigurationError, match="model_capabilities"):
        Settings(model_capabilities=value).validate()



@pytest.mark.parametrize("name, model", [("deepseek", "deepseek-chat"), ("groq", "llama-3.3-70b-versatile")])
def test_a_tool_image_reaches_a_text_only_host_as_a_note(name, model):
    history = copy.deepcopy(SHOT)
    with compatible_fake(name, [Reply("I cannot see it.")]) as fake:
        create_provider(fake.settings(model=model)).complete("", history, [])
        fake.assert_done()  # DeepSeek and Groq refuse image parts (for this model): a 400 on every later call
    wire = fake.requests[0].body["messages"]
    assert wire[-1] == {"role": "tool", "tool_call_id": "call_shot1", "content": "took it\n" + NOTE.format(model)}
    assert history == SHOT  # the session keeps the image


def test_an_openai_model_without_vision_gets_the_note_and_one_with_vision_the_image():
    with OpenAIFake([Reply("no"), Reply("a cat")]) as fake:
        OpenAIProvider(fake.settings(model="o3-mini")).complete("", SHOT, [])
        OpenAIProvider(fake.settings(model="gpt-4o")).complete("", SHOT, [])
        fake.assert_done()
    assert "image_url" not in str(fake.requests[0].body) and NOTE.format("o3-mini") in str(fake.requests[0].body)
    assert fake.requests[1].body["messages"][-1]["content"][0]["type"] == "image_url"


@pytest.mark.parametrize("fake_class, provider_class", [(AnthropicFake, AnthropicProvider),
                                                        (GoogleFake, GoogleProvider), (OllamaFake, OllamaProvider)])
def test_every_provider_honours_a_text_only_override(fake_class, provider_class):
    with fake_class([Reply("ok")]) as fake:
        settings = fake.settings(model_capabilities={"*": {"images": False}})
        provider_class(settings).complete("", SHOT, [])
        fake.assert_done()
    body = str(fake.requests[0].body)
    assert "aGk=" not in body and "does not take images" in body
