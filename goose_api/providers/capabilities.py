"""What a model can do: its context window, whether it takes images, whether it is a reasoning model.

Tables of fragments of model names (the longest matching fragment wins, so
"o3-mini" beats "o3"), overridden per model by ``settings.model_capabilities``
(glob of a model name -> ``{"images": bool, "context_limit": int}``) and, for
reasoning models, extended by ``settings.reasoning_models`` (globs).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Mapping

from goose_api.settings import Settings

DEFAULT_CONTEXT = 128_000
# (fragment of a model name, context window in tokens)
CONTEXT_LIMITS: tuple[tuple[str, int], ...] = (
    ("gpt-4o", 128_000), ("gpt-4-turbo", 128_000), ("gpt-4.1", 1_000_000), ("gpt-5", 400_000),
    ("o1", 200_000), ("o3", 200_000), ("o4", 200_000), ("claude", 200_000),
    ("gemini-1.5", 1_000_000), ("gemini-1", 128_000), ("gemini-2", 1_000_000), ("gemini-3", 1_000_000),
    ("llama3.2", 128_000), ("llama3.3", 128_000), ("llama-3", 128_000), ("qwen2.5", 32_768), ("qwen3", 128_000),
    ("deepseek", 128_000), ("grok", 131_072), ("mistral-large", 128_000), ("smollm2", 8_192),
)
# (fragment of a model name, takes images); a model in no row is assumed to take them.
IMAGE_INPUT: tuple[tuple[str, bool], ...] = (
    ("deepseek", False), ("o1-mini", False), ("o3-mini", False), ("gpt-3.5", False), ("gpt-oss", False),
    ("grok-3", False), ("grok-code", False), ("grok-2-vision", True),
    ("mistral-large", False), ("codestral", False), ("devstral", False), ("open-mistral", False),
    ("llama-3.1", False), ("llama-3.3", False), ("llama3.1", False), ("llama3.3", False), ("llama3.2", False),
    ("llama3.2-vision", True), ("llama-4", True), ("qwen2.5", False), ("qwen2.5vl", True), ("qwen2.5-vl", True),
    ("qwen3", False), ("qwen3-vl", True), ("smollm", False), ("phi3", False), ("phi4", False),
)
# Providers whose every model is text-only, whatever its name.
TEXT_ONLY_PROVIDERS = ("deepseek",)
REASONING = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)")


def _longest(table: tuple[tuple[str, Any], ...], model: str) -> Any:
    name = model.lower()
    matches = [(len(fragment), value) for fragment, value in table if fragment in name]
    return max(matches, key=lambda m: m[0])[1] if matches else None


def _override(settings: Settings | None, model: str, key: str) -> Any:
    """The ``model_capabilities`` value for ``key`` from the first glob matching the model."""
    table: Mapping[str, Any] = (settings.model_capabilities if settings is not None else None) or {}
    for pattern, values in table.items():
        if fnmatch.fnmatchcase(model.lower(), str(pattern).lower()) and isinstance(values, Mapping) \
                and key in values:
            return values[key]
    return None


def context_limit(model: str, settings: Settings | None = None) -> int:
    """The model's window: ``settings.context_limit``, its ``model_capabilities``, the table, else 128k."""
    if settings is not None and settings.context_limit:
        return settings.context_limit
    override = _override(settings, model, "context_limit")
    if override:
        return int(override)
    return _longest(CONTEXT_LIMITS, model) or DEFAULT_CONTEXT


def takes_images(provider: str, model: str, settings: Settings | None = None) -> bool:
    """Whether images may be sent to the model (a text-only model refuses the whole request)."""
    override = _override(settings, model, "images")
    if override is not None:
        return bool(override)
    if provider in TEXT_ONLY_PROVIDERS:
        return False
    known = _longest(IMAGE_INPUT, model)
    return True if known is None else known


def is_reasoning_model(model: str, settings: Settings | None = None, *, openai_names: bool = True) -> bool:
    """A model named in ``settings.reasoning_models`` or, when the name is OpenAI's own
    (``openai_names``), of the o-series and GPT-5 families (not their ``-chat`` models)."""
    name = model.lower()
    patterns = settings.reasoning_models if settings is not None else ()
    if any(fnmatch.fnmatchcase(name, str(p).lower()) for p in patterns):
        return True
    return openai_names and REASONING.match(name) is not None and "-chat" not in name


def image_note(mime_type: str, model: str) -> str:
    """What a text-only model reads instead of an image (the session keeps the image)."""
    return f"[an image ({mime_type}) was left out: the model {model} does not take images]"
