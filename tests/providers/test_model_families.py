"""OpenAI's reasoning models (o-series, GPT-5, and names from the ``reasoning_models`` setting) and Azure
deployments, whose names say nothing: each gets the parameters its model family takes."""

from __future__ import annotations

import pytest

from goose_api.conversation import Message
from goose_api.errors import ConfigurationError
from goose_api.providers import create_provider
from goose_api.providers.azure import DEFAULT_API_VERSION, REASONING_API_VERSION, AzureOpenAIProvider
from goose_api.providers.capabilities import is_reasoning_model
from goose_api.providers.openai import OpenAIProvider
from goose_api.settings import Settings
from tests.fakes import AzureOpenAIFake, OpenAIFake, Reply, compatible_fake


@pytest.mark.parametrize("model, reasoning", [
    ("o1", True), ("o3-mini", True), ("o4-mini", True), ("gpt-5", True), ("gpt-5-mini", True), ("gpt-5.1", True),
    ("gpt-5-chat-latest", False), ("gpt-4o", False), ("gpt-4.1-mini", False), ("omni-moderation", False)])
def test_openai_model_families(model, reasoning):
    assert is_reasoning_model(model) is reasoning


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "gpt-5-nano-low"])
def test_gpt5_gets_max_completion_tokens_no_temperature_and_the_developer_role(model):
    with OpenAIFake([Reply("ok")]) as fake:
        OpenAIProvider(fake.settings(model=model, temperature=0.2, max_tokens=300)).complete(
            "rules", [Message.user("hi")], [])
        fake.assert_done()  # the fake refuses temperature and max_tokens for GPT-5, as the API does
    body = fake.requests[0].body
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body and "temperature" not in body
    assert body["messages"][0]["role"] == "developer"
    assert body.get("reasoning_effort") == ("low" if model.endswith("-low") else None)


def test_the_reasoning_models_setting_names_new_models_on_any_openai_style_host():
    with OpenAIFake([Reply("ok")]) as fake:
        settings = fake.settings(model="o9-preview-2031", temperature=0.5, max_tokens=10,
                                 reasoning_models=("o9-*",))
        OpenAIProvider(settings).complete("rules", [Message.user("hi")], [])
        fake.assert_done()
    assert "temperature" not in fake.requests[0].body and fake.requests[0].body["max_completion_tokens"] == 10
    with compatible_fake("openrouter", [Reply("ok"), Reply("ok")]) as fake:
        plain = create_provider(fake.settings(model="openai/o3", temperature=0.5))
        plain.complete("", [Message.user("hi")], [])
        named = create_provider(fake.settings(model="openai/o3", temperature=0.5, reasoning_models=("openai/o*",)))
        named.complete("", [Message.user("hi")], [])
        fake.assert_done()
    # On another host an OpenAI-looking name is the host's business, unless the setting says otherwise.
    assert fake.requests[0].body["temperature"] == 0.5 and "temperature" not in fake.requests[1].body


def test_reasoning_models_setting_from_the_environment():
    settings = Settings.load(environ={"GOOSE_API_REASONING_MODELS": "[o9-*, my-thinker]", "HOME": "/nonexistent"},
                             cwd="/")
    assert settings.reasoning_models == ("o9-*", "my-thinker")
    assert is_reasoning_model("my-thinker", settings) and not is_reasoning_model("my-talker", settings)


def test_an_azure_reasoning_deployment_with_an_opaque_name_is_set_by_the_family_setting():
    with AzureOpenAIFake([Reply("ok")], deployment="prod-brain", reasoning=True) as fake:
        settings = fake.settings(temperature=0.3, max_tokens=200, env={"AZURE_OPENAI_MODEL_FAMILY": "reasoning"})
        provider = AzureOpenAIProvider(settings)
        provider.complete("rules", [Message.user("hi")], [])
        fake.assert_done()  # a reasoning deployment refuses old api-versions, temperature and max_tokens
    request = fake.requests[0]
    assert request.query == {"api-version": REASONING_API_VERSION} and provider.family == "reasoning"
    assert request.body["max_completion_tokens"] == 200 and "temperature" not in request.body
    assert request.body["messages"][0]["role"] == "developer"


def test_an_azure_deployment_named_after_its_reasoning_model_needs_no_setting():
    with AzureOpenAIFake([Reply("ok")], deployment="o4-mini", reasoning=True) as fake:
        AzureOpenAIProvider(fake.settings(max_tokens=20)).complete("", [Message.user("hi")], [])
        fake.assert_done()
    assert fake.requests[0].query == {"api-version": REASONING_API_VERSION}


def test_an_azure_chat_deployment_keeps_the_ga_version_and_sampling_parameters():
    with AzureOpenAIFake([Reply("ok")], deployment="o4-mini-is-really-gpt-4o") as fake:
        settings = fake.settings(temperature=0.3, env={"AZURE_OPENAI_MODEL_FAMILY": "chat"})
        AzureOpenAIProvider(settings).complete("", [Message.user("hi")], [])
        fake.assert_done()
    assert fake.requests[0].query == {"api-version": DEFAULT_API_VERSION}
    assert fake.requests[0].body["temperature"] == 0.3


def test_an_old_api_version_for_a_reasoning_deployment_is_refused_by_the_fake_as_by_azure():
    with AzureOpenAIFake([Reply("never")], deployment="prod-brain", reasoning=True) as fake:
        settings = fake.settings(env={"AZURE_OPENAI_MODEL_FAMILY": "reasoning",
                                      "AZURE_OPENAI_API_VERSION": "2024-10-21"})
        with pytest.raises(Exception, match="2024-12-01-preview and later"):
            AzureOpenAIProvider(settings).complete("", [Message.user("hi")], [])
        fake.violations.clear()
        fake.steps.clear()


def test_an_unknown_azure_family_is_a_configuration_error():
    with AzureOpenAIFake() as fake:
        with pytest.raises(ConfigurationError, match="AZURE_OPENAI_MODEL_FAMILY"):
            AzureOpenAIProvider(fake.settings(env={"AZURE_OPENAI_MODEL_FAMILY": "thinking"}))
