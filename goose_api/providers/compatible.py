"""OpenAI-compatible hosts by name, and ``openai_compatible`` for any base URL.

Each named host reads ``<NAME>_API_KEY`` (required), ``<NAME>_HOST`` and
``<NAME>_BASE_PATH`` (defaults below); ``openai_compatible`` reads
``OPENAI_COMPATIBLE_HOST`` (required: vLLM, LM Studio, llama.cpp server, ...),
an optional ``OPENAI_COMPATIBLE_API_KEY`` and ``OPENAI_COMPATIBLE_BASE_PATH``.
The wire format is OpenAI's; where a host is stricter, its ``dialect`` says so:

- Mistral refuses ``stream_options`` (422), tool call ids that are not 9
  letters or digits, and a user message right after a tool message (400).
- DeepSeek takes text only, and wants the ``reasoning_content`` of a tool-call
  turn sent back with it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from goose_api.providers import openai_format as fmt
from goose_api.providers.openai import OpenAIStyleProvider

MISTRAL_CALL_ID = re.compile(r"^[a-zA-Z0-9]{9}$")
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mistral_call_id(call_id: str) -> str:
    """A call id as Mistral accepts it: kept if valid, else 9 base-62 digits of its hash.

    A pure function of the id, so a call and its result always agree, on every
    request: a session started on another provider continues on Mistral.
    """
    if MISTRAL_CALL_ID.match(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(digits)


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

    def dialect(self) -> fmt.Dialect:
        return replace(super().dialect(), reasoning_content=True)  # text only: see capabilities


class XAIProvider(OpenAIStyleProvider):
    name, env_prefix = "xai", "XAI"
    default_host = "https://api.x.ai"
    default_model = "grok-3"
    required_env = ("XAI_API_KEY",)


class MistralProvider(OpenAIStyleProvider):
    """Mistral's strict schema: no ``stream_options`` (streamed answers carry their usage anyway)."""

    name, env_prefix = "mistral", "MISTRAL"
    default_host = "https://api.mistral.ai"
    default_model = "mistral-large-latest"
    stream_usage = False
    required_env = ("MISTRAL_API_KEY",)

    def dialect(self) -> fmt.Dialect:
        return replace(super().dialect(), call_id=mistral_call_id, bridge_tool_to_user=True)


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
