"""Azure OpenAI: OpenAI's wire format at a deployment URL with an ``api-key`` header.

Settings: ``AZURE_OPENAI_ENDPOINT`` (https://NAME.openai.azure.com),
``AZURE_OPENAI_DEPLOYMENT_NAME``, ``AZURE_OPENAI_API_KEY`` (all required),
``AZURE_OPENAI_API_VERSION`` and ``AZURE_OPENAI_MODEL_FAMILY``. The deployment
decides the model; the configured model name is only reported and sent along.

A deployment's name says nothing certain about its model, so the model family
is a setting: ``reasoning`` (o-series, GPT-5: ``max_completion_tokens``, no
temperature, the ``developer`` role, and an api-version new enough for them)
or ``chat``. Unset, the deployment (or configured model) name decides, as for
OpenAI, with the ``reasoning_models`` setting applied too.
"""

from __future__ import annotations

from urllib.parse import quote

from goose_api.conversation import Message
from goose_api.errors import ConfigurationError
from goose_api.providers.base import ToolSpec, configured_model
from goose_api.providers.capabilities import is_reasoning_model
from goose_api.providers.http import WireRequest, env_value, join_url, require_env
from goose_api.providers.openai import OpenAIStyleProvider
from goose_api.settings import Settings

DEFAULT_API_VERSION = "2024-10-21"
REASONING_API_VERSION = "2025-04-01-preview"  # reasoning deployments refuse versions before 2024-12-01-preview
FAMILIES = ("chat", "reasoning")


class AzureOpenAIProvider(OpenAIStyleProvider):
    name, env_prefix = "azure_openai", "AZURE_OPENAI"
    default_model = ""  # the deployment name
    required_env = ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_API_KEY")

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError naming the first unset variable, or a family that is not one of FAMILIES."""
        endpoint = require_env(settings, self.name, "AZURE_OPENAI_ENDPOINT")
        deployment = require_env(settings, self.name, "AZURE_OPENAI_DEPLOYMENT_NAME")
        family = env_value(settings, "AZURE_OPENAI_MODEL_FAMILY")
        if family is not None and family.lower() not in FAMILIES:
            raise ConfigurationError(f"AZURE_OPENAI_MODEL_FAMILY must be one of {', '.join(FAMILIES)}, got {family!r}")
        self.default_host = endpoint
        self.default_base_path = f"openai/deployments/{quote(deployment, safe='')}/chat/completions"
        super().__init__(settings, model or configured_model(settings, self.name) or deployment)
        self.url = join_url(endpoint, self.default_base_path)
        self.family = family.lower() if family else (
            "reasoning" if is_reasoning_model(self.model, settings) or is_reasoning_model(deployment, settings)
            else "chat")
        default_version = REASONING_API_VERSION if self.family == "reasoning" else DEFAULT_API_VERSION
        self.api_version = env_value(settings, "AZURE_OPENAI_API_VERSION", default_version)

    def headers(self) -> dict[str, str]:
        return {"api-key": self.api_key or ""}

    def reasoning(self) -> bool:
        return self.family == "reasoning"

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        wire = super().request(system, messages, tools, stream)
        wire.params = {"api-version": self.api_version}
        return wire
