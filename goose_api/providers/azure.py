"""Azure OpenAI: OpenAI's wire format at a deployment URL with an ``api-key`` header.

Settings: ``AZURE_OPENAI_ENDPOINT`` (https://NAME.openai.azure.com),
``AZURE_OPENAI_DEPLOYMENT_NAME``, ``AZURE_OPENAI_API_KEY`` (all required) and
``AZURE_OPENAI_API_VERSION`` (default below). The deployment decides the
model; the configured model name is only reported and sent along.
"""

from __future__ import annotations

from urllib.parse import quote

from goose_api.conversation import Message
from goose_api.providers.base import ToolSpec, configured_model
from goose_api.providers.http import WireRequest, env_value, join_url, require_env
from goose_api.providers.openai import OpenAIStyleProvider
from goose_api.settings import Settings

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAIStyleProvider):
    name, env_prefix = "azure_openai", "AZURE_OPENAI"
    default_model = ""  # the deployment name
    required_env = ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_DEPLOYMENT_NAME", "AZURE_OPENAI_API_KEY")

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError naming the first unset variable."""
        endpoint = require_env(settings, self.name, "AZURE_OPENAI_ENDPOINT")
        deployment = require_env(settings, self.name, "AZURE_OPENAI_DEPLOYMENT_NAME")
        self.default_host = endpoint
        self.default_base_path = f"openai/deployments/{quote(deployment, safe='')}/chat/completions"
        super().__init__(settings, model or configured_model(settings, self.name) or deployment)
        self.url = join_url(endpoint, self.default_base_path)
        self.api_version = env_value(settings, "AZURE_OPENAI_API_VERSION", DEFAULT_API_VERSION)

    def headers(self) -> dict[str, str]:
        return {"api-key": self.api_key or ""}

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        wire = super().request(system, messages, tools, stream)
        wire.params = {"api-version": self.api_version}
        return wire
