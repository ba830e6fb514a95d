"""OpenAI chat completions, and the base every OpenAI-style host builds on.

Settings (goose's names, read from ``settings.env``): ``OPENAI_API_KEY``
(required), ``OPENAI_HOST`` (default https://api.openai.com),
``OPENAI_BASE_PATH`` (default v1/chat/completions), ``OPENAI_ORGANIZATION``,
``OPENAI_PROJECT``. Subclasses only change the variable prefix and defaults.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import openai_format as fmt
from goose_api.providers.base import ProviderReply, StreamEvent, ToolSpec
from goose_api.providers.http import HttpProvider, WireRequest, classify_http, env_value, join_url, require_env
from goose_api.settings import Settings

# Lower-case fragments of "your prompt is too long" as OpenAI-style hosts word it
# (OpenAI/Groq code, OpenAI/DeepSeek/OpenRouter text, Mistral text, vLLM text).
CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "too large for model",
                   "context window", "prompt is too long", "exceeds the context")
# insufficient_quota comes as a 429 but waiting never fixes it: it is the account's problem, like a bad key.
AUTH_MARKERS = ("invalid_api_key", "incorrect api key", "insufficient_quota")
RATE_MARKERS = ("rate_limit_exceeded",)


class OpenAIStyleProvider(HttpProvider):
    """A chat-completions API configured by ``<PREFIX>_API_KEY`` / ``_HOST`` / ``_BASE_PATH``."""

    name = "openai"
    env_prefix = "OPENAI"
    default_model = "gpt-4o"
    default_host: str | None = "https://api.openai.com"
    default_base_path = "v1/chat/completions"
    key_required = True
    stream_usage = True  # send stream_options.include_usage (some servers reject it)
    required_env: tuple[str, ...] = ("OPENAI_API_KEY",)

    def __init__(self, settings: Settings, model: str | None = None):
        """Raises: ConfigurationError naming the variable to set."""
        super().__init__(settings, model)
        key_var = f"{self.env_prefix}_API_KEY"
        self.api_key = require_env(settings, self.name, key_var) if self.key_required \
            else env_value(settings, key_var)
        host = env_value(settings, f"{self.env_prefix}_HOST", self.default_host)
        if host is None:
            raise ConfigurationError(f"The {self.name} provider needs {self.env_prefix}_HOST "
                                     "(the server's base URL, e.g. http://localhost:8000)")
        self.url = join_url(host, env_value(settings, f"{self.env_prefix}_BASE_PATH", self.default_base_path))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        body = fmt.chat_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens, stream=stream, stream_usage=self.stream_usage)
        return WireRequest(self.url, self.headers(), body)

    def parse(self, body: dict[str, Any]) -> ProviderReply:
        return fmt.from_response(body, self.model)

    def parse_stream(self, lines: Iterator[str]) -> Iterator[StreamEvent]:
        return fmt.parse_chat_stream(lines, self.model, lambda status, text: self.classify(status, text, {}))

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers, context_markers=CONTEXT_MARKERS,
                             auth_markers=AUTH_MARKERS, rate_markers=RATE_MARKERS)


class OpenAIProvider(OpenAIStyleProvider):
    """api.openai.com (or a proxy of it at OPENAI_HOST)."""

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        organization = env_value(self.settings, "OPENAI_ORGANIZATION")
        project = env_value(self.settings, "OPENAI_PROJECT")
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        return headers
