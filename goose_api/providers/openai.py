"""OpenAI chat completions, and the base every OpenAI-style host builds on.

Settings (goose's names, read from ``settings.env``): ``OPENAI_API_KEY``
(required), ``OPENAI_HOST`` (default https://api.openai.com),
``OPENAI_BASE_PATH`` (default v1/chat/completions), ``OPENAI_ORGANIZATION``,
``OPENAI_PROJECT``. Subclasses change the variable prefix and defaults, and
where a host differs from OpenAI, its ``dialect``.

Reasoning models (the o-series and GPT-5 families, and any model the
``reasoning_models`` setting names) are sent ``max_completion_tokens``, no
temperature and a ``developer`` system message.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from goose_api.conversation import Message
from goose_api.errors import ConfigurationError, ProviderError
from goose_api.providers import failures
from goose_api.providers import openai_format as fmt
from goose_api.providers.base import ProviderReply, StreamEvent, ToolSpec
from goose_api.providers.capabilities import is_reasoning_model, takes_images
from goose_api.providers.http import HttpProvider, WireRequest, classify_http, env_value, join_url, require_env
from goose_api.providers.tool_names import ToolNames
from goose_api.providers.wire_cache import WireCache
from goose_api.settings import Settings

AUTH_MARKERS = ("invalid_api_key", "incorrect api key")
RATE_MARKERS = ("rate_limit_exceeded",)


class OpenAIStyleProvider(HttpProvider):
    """A chat-completions API configured by ``<PREFIX>_API_KEY`` / ``_HOST`` / ``_BASE_PATH``."""

    name = "openai"
    env_prefix = "OPENAI"
    default_model = "gpt-4o"
    default_host: str | None = "https://api.openai.com"
    default_base_path = "v1/chat/completions"
    key_required = True
    stream_usage = True    # send stream_options.include_usage (some servers reject it)
    reasoning_family = False  # OpenAI's own model names mean what they say (o-series, GPT-5)
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
        self.wire_cache = WireCache()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def reasoning(self) -> bool:
        """Whether the model is sent as a reasoning model (``reasoning_models`` applies to every host)."""
        return is_reasoning_model(self.model, self.settings, openai_names=self.reasoning_family)

    def dialect(self) -> fmt.Dialect:
        return fmt.Dialect(images=takes_images(self.name, self.model, self.settings), model=self.model)

    def request(self, system: str, messages: list[Message], tools: list[ToolSpec], stream: bool) -> WireRequest:
        names = ToolNames(t.name for t in tools)
        body = fmt.chat_body(self.model, system, messages, tools, temperature=self.settings.temperature,
                             max_tokens=self.settings.max_tokens, stream=stream, stream_usage=self.stream_usage,
                             reasoning=self.reasoning(), dialect=self.dialect(), names=names, cache=self.wire_cache)
        return WireRequest(self.url, self.headers(), body, names=names)

    def parse(self, body: dict[str, Any], wire: WireRequest) -> ProviderReply:
        return fmt.from_response(body, self.model, names=wire.names, limit=self.settings.max_tokens,
                                 provider=self.name)

    def parse_stream(self, lines: Iterator[str], wire: WireRequest) -> Iterator[StreamEvent]:
        return fmt.parse_chat_stream(lines, self.model, lambda status, text: self.classify(status, text, {}),
                                     names=wire.names, limit=self.settings.max_tokens, provider=self.name)

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return classify_http(self.name, status, text, headers, auth_markers=AUTH_MARKERS, rate_markers=RATE_MARKERS)


class OpenAIProvider(OpenAIStyleProvider):
    """api.openai.com (or a proxy of it at OPENAI_HOST)."""

    reasoning_family = True

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        organization = env_value(self.settings, "OPENAI_ORGANIZATION")
        project = env_value(self.settings, "OPENAI_PROJECT")
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        return headers

    def classify(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        """A 429 without ``Retry-After`` waits for the ``x-ratelimit-reset-*`` of the exhausted limit."""
        wait = None
        if status == 429 and "retry-after" not in headers and "retry-after-ms" not in headers:
            wait = failures.openai_rate_reset(headers)
        return classify_http(self.name, status, text, headers, auth_markers=AUTH_MARKERS, rate_markers=RATE_MARKERS,
                             retry_after=wait)
