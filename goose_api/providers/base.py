"""The provider protocol.

A provider turns (system prompt, goose messages, tool specs) into one
assistant message. Each provider module is two parts: pure functions that
convert goose messages to and from its wire format, and a thin transport over
``requests``. Errors are raised as ``ProviderError`` with one of its kinds so
the agent can retry, compact the context, or surface them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Union

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.settings import Settings

__all__ = ["ToolSpec", "Usage", "ProviderReply", "TextDelta", "ToolCallReady",
           "StreamEvent", "ReplyBuilder", "Provider", "ProviderError", "DEFAULT_PROVIDER", "configured_model"]

DEFAULT_PROVIDER = "local"  # used when no provider is configured: works offline with no key


def configured_model(settings: Settings, provider: str) -> str | None:
    """``settings.model``, but only for the provider it was configured with.

    A model name means nothing to another provider ("gpt-4o" on Anthropic), so
    building a provider other than the configured one falls back to its default.
    """
    return settings.model if (settings.provider or DEFAULT_PROVIDER) == provider else None


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model: ``name`` is already ``extension__tool``."""

    name: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and (self.input_tokens is not None or self.output_tokens is not None):
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_json(self) -> dict[str, int | None]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens}


@dataclass
class ProviderReply:
    message: Message          # role "assistant": text and/or toolRequest items
    usage: Usage
    model: str                # the model that answered, as the provider reports it


@dataclass(frozen=True)
class TextDelta:
    """A piece of assistant text, as it arrives."""

    text: str


@dataclass(frozen=True)
class ToolCallReady:
    """A tool call whose arguments have been fully received (a toolRequest content dict)."""

    content: dict[str, Any]


StreamEvent = Union[TextDelta, ToolCallReady, ProviderReply]


class ReplyBuilder:
    """Collects an answer's text pieces and tool calls into the final assistant message.

    The message holds the joined text first, then the tool requests in the
    order they came: the same shape whether the answer was streamed or not.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[dict[str, Any]] = []

    def text(self, piece: str) -> TextDelta:
        self.texts.append(piece)
        return TextDelta(piece)

    def call(self, item: dict[str, Any]) -> ToolCallReady:
        self.calls.append(item)
        return ToolCallReady(item)

    def reply(self, usage: Usage, model: str) -> ProviderReply:
        text = "".join(self.texts)
        content = ([{"type": "text", "text": text}] if text else []) + self.calls
        return ProviderReply(Message("assistant", content), usage, model)


class Provider(Protocol):
    """What the agent needs from a provider.

    ``stream`` yields ``TextDelta`` / ``ToolCallReady`` events as they arrive
    and ends with exactly one ``ProviderReply`` holding the whole message.
    Both methods raise ``ProviderError`` (with a kind) on failure.
    """

    name: str
    model: str

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply: ...

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]: ...
