"""The provider registry: names, defaults, credentials."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from goose_api.errors import ConfigurationError
from goose_api.providers import PROVIDERS, create_provider, default_model, missing_credentials
from goose_api.settings import Settings

EXPECTED = {"openai", "anthropic", "google", "ollama", "azure_openai", "openrouter", "groq", "deepseek", "xai",
            "mistral", "openai_compatible", "local"}


def settings(env=None, **values):
    """Settings with only the given provider variables; a stand-in file as the local model (never loaded)."""
    values.setdefault("local_model_path", __file__)
    return Settings(**values, env=MappingProxyType(env or {}))


def test_every_provider_is_registered_under_its_name():
    assert set(PROVIDERS) == EXPECTED
    assert all(cls.name == name for name, cls in PROVIDERS.items())


def test_defaults():
    assert default_model("openai") == "gpt-4o"
    assert default_model("ollama") == "qwen2.5"
    assert default_model("local") == "SmolLM2-135M-Instruct"
    with pytest.raises(ConfigurationError, match="Unknown provider 'nope'.*openai"):
        default_model("nope")


def test_no_provider_configured_means_local():
    provider = create_provider(settings())
    assert provider.name == "local" and provider.model == "test_registry"  # a custom GGUF's stem


def test_name_and_model_come_from_settings_unless_given():
    configured = settings({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, provider="openai", model="gpt-4.1")
    assert (create_provider(configured).name, create_provider(configured).model) == ("openai", "gpt-4.1")
    other = create_provider(configured, "anthropic")
    assert (other.name, other.model) == ("anthropic", "claude-sonnet-4-0")  # not the openai model
    assert create_provider(configured, "anthropic", "claude-opus-4-1").model == "claude-opus-4-1"


@pytest.mark.parametrize("name, needed", [
    ("openai", ["OPENAI_API_KEY"]), ("anthropic", ["ANTHROPIC_API_KEY"]), ("google", ["GOOGLE_API_KEY"]),
    ("ollama", []), ("local", []), ("groq", ["GROQ_API_KEY"]), ("openai_compatible", ["OPENAI_COMPATIBLE_HOST"]),
    ("azure_openai", ["AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_API_KEY"]),
])
def test_missing_credentials_lists_variables_and_construction_names_them(name, needed):
    empty = settings(provider=name)
    assert missing_credentials(empty) == needed
    if needed:
        with pytest.raises(ConfigurationError, match=needed[0]):
            create_provider(empty)
    full = settings({var: "https://x.example" for var in needed}, provider=name)
    assert missing_credentials(full) == []
    create_provider(full)  # builds without any network or model loading
