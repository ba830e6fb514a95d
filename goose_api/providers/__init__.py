"""The provider registry: every provider by the name users configure.

``create_provider(settings)`` builds the configured provider (``local`` when
none is configured); ``missing_credentials`` lists the variables still to set,
for the start-up check and ``GET /ready``. Building a provider opens no
connection and loads no model.
"""

from __future__ import annotations

from goose_api.errors import ConfigurationError
from goose_api.providers.anthropic import AnthropicProvider
from goose_api.providers.azure import AzureOpenAIProvider
from goose_api.providers.base import DEFAULT_PROVIDER, Provider
from goose_api.providers.compatible import (
    DeepSeekProvider,
    GroqProvider,
    MistralProvider,
    OpenAICompatibleProvider,
    OpenRouterProvider,
    XAIProvider,
)
from goose_api.providers.google import GoogleProvider
from goose_api.providers.http import env_value
from goose_api.providers.local import LocalProvider
from goose_api.providers.ollama import OllamaProvider
from goose_api.providers.openai import OpenAIProvider
from goose_api.settings import Settings

PROVIDERS: dict[str, type] = {cls.name: cls for cls in (
    OpenAIProvider, AnthropicProvider, GoogleProvider, OllamaProvider, AzureOpenAIProvider,
    OpenRouterProvider, GroqProvider, DeepSeekProvider, XAIProvider, MistralProvider,
    OpenAICompatibleProvider, LocalProvider)}


def provider_class(name: str) -> type:
    """Raises: ConfigurationError for an unknown name, listing the known ones."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ConfigurationError(f"Unknown provider {name!r}; choose one of: {', '.join(sorted(PROVIDERS))}") \
            from None


def default_model(name: str) -> str:
    """The model a provider uses when none is configured."""
    return provider_class(name).default_model


def configured_name(settings: Settings, name: str | None = None) -> str:
    return name or settings.provider or DEFAULT_PROVIDER


def create_provider(settings: Settings, name: str | None = None, model: str | None = None) -> Provider:
    """Build a provider; name and model default to the settings' (the model only for the configured provider).

    Raises:
        ConfigurationError: unknown provider, or a credential is missing (naming the variable).
    """
    return provider_class(configured_name(settings, name))(settings, model)


def missing_credentials(settings: Settings, name: str | None = None) -> list[str]:
    """Names of the environment variables the provider needs and that are unset."""
    cls = provider_class(configured_name(settings, name))
    return [var for var in cls.required_env if env_value(settings, var) is None]


def configuration_problem(settings: Settings, name: str | None = None) -> str | None:
    """Why the provider cannot be built as configured (for start-up and GET /ready), or None.

    Covers unknown names, missing credentials and, for ``local``, a missing model file.
    """
    try:
        create_provider(settings, name)
    except ConfigurationError as exc:
        return str(exc)
    return None
