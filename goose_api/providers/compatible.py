"""OpenAI-compatible hosts by name, and ``openai_compatible`` for any base URL.

Each named host reads ``<NAME>_API_KEY`` (required), ``<NAME>_HOST`` and
``<NAME>_BASE_PATH`` (defaults below); ``openai_compatible`` reads
``OPENAI_COMPATIBLE_HOST`` (required: vLLM, LM Studio, llama.cpp server, ...),
an optional ``OPENAI_COMPATIBLE_API_KEY`` and ``OPENAI_COMPATIBLE_BASE_PATH``.
The wire format is OpenAI's; only where to send it differs.
"""

from __future__ import annotations

from goose_api.providers.openai import OpenAIStyleProvider


class OpenRouterProvider(OpenAIStyleProvider):
    name, env_prefix = "openrouter", "OPENROUTER"
    default_host, default_base_path = "https://openrouter.ai", "api/v1/chat/completions"
    default_model = "anthropic/claude-sonnet-4"
    required_env = ("OPENROUTER_API_KEY",)


class GroqProvider(OpenAIStyleProvider):
    name, env_prefix = "groq", "GROQ"
    default_host, default_base_path = "https://api.groq.com", "openai/v1/chat/completions"
    default_model = "llama-3.3-70b-versatile"
    required_env = ("GROQ_API_KEY",)


class DeepSeekProvider(OpenAIStyleProvider):
    name, env_prefix = "deepseek", "DEEPSEEK"
    default_host = "https://api.deepseek.com"
    default_model = "deepseek-chat"
    required_env = ("DEEPSEEK_API_KEY",)


class XAIProvider(OpenAIStyleProvider):
    name, env_prefix = "xai", "XAI"
    default_host = "https://api.x.ai"
    default_model = "grok-3"
    required_env = ("XAI_API_KEY",)


class MistralProvider(OpenAIStyleProvider):
    name, env_prefix = "mistral", "MISTRAL"
    default_host = "https://api.mistral.ai"
    default_model = "mistral-large-latest"
    required_env = ("MISTRAL_API_KEY",)


class OpenAICompatibleProvider(OpenAIStyleProvider):
    """Any chat-completions server; the key is optional, the host is not.

    ``stream_options`` is not sent: several local servers reject unknown fields,
    so streamed usage is whatever the server volunteers.
    """

    name, env_prefix = "openai_compatible", "OPENAI_COMPATIBLE"
    default_host = None
    default_model = "default"
    key_required = False
    stream_usage = False
    required_env = ("OPENAI_COMPATIBLE_HOST",)
