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

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.settings import Settings

__all__ = ["ToolSpec", "Usage", "ProviderReply", "TextDelta", "ToolCallReady", "StreamEvent", "ReplyBuilder",
           "Provider", "ProviderError", "DEFAULT_PROVIDER", "configured_model", "cut_off", "output_limit_warning",
           "END_TURN", "TOOL_USE", "MAX_TOKENS", "USAGE_FIELDS", "CACHE_FIELDS"]

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


CACHE_FIELDS = ("cache_read_tokens", "cache_write_tokens")
USAGE_FIELDS = (*conv.TOKEN_FIELDS, *CACHE_FIELDS)  # goose's counters, then the prompt cache's


@dataclass
class Usage:
    """A call's tokens. ``input_tokens`` is the whole prompt, cached parts included; the cache
    fields say how much of it was read from (or written to) the provider's prompt cache."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.total_tokens is None and (self.input_tokens is not None or self.output_tokens is not None):
            self.total_tokens = (self.input_tokens or 0) + (self.output_tokens or 0)

    def to_json(self) -> dict[str, int | None]:
        """The three counts always; the cache counts when the provider reported them."""
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
               "total_tokens": self.total_tokens}
        for key in CACHE_FIELDS:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


# Why an answer ended, as every provider reports it in its own words.
END_TURN, TOOL_USE, MAX_TOKENS = "end_turn", "tool_use", "max_tokens"


@dataclass
class ProviderReply:
    message: Message          # role "assistant": text and/or toolRequest items
    usage: Usage
    model: str                # the model that answered, as the provider reports it
    stop_reason: str = END_TURN
    warnings: list[str] = field(default_factory=list)  # for the turn's answer ("status": "warning")


def output_limit_warning(limit: int | None) -> str:
    where = f"its output limit of {limit} tokens" if limit else "the model's default output limit"
    return (f"The model's answer was cut off at {where} and may be incomplete: raise max_tokens "
            "(GOOSE_API_MAX_TOKENS, or max_tokens in the config file)")


def cut_off(reply: ProviderReply, limit: int | None, provider: str = "model") -> ProviderReply:
    """An answer the output limit stopped: warn, and never run a tool call it cut in half.

    The call being written when the limit struck is the last item; its
    arguments may parse and still be incomplete, so it becomes a tool request
    error: the model reads why next turn and nothing runs.

    Raises:
        ProviderError: the limit struck before any answer at all (a reasoning
            model can spend all of it thinking): an empty answer is not saved as one.
    """
    if not any(conv.kind(item) in ("text", "toolRequest") for item in reply.message.content):
        where = f"of {limit} tokens" if limit else "(the model's default)"
        raise ProviderError(provider, ProviderError.BAD_REQUEST,
                            f"the model reached its output limit {where} before writing any answer (reasoning "
                            "models spend tokens thinking first): raise max_tokens (GOOSE_API_MAX_TOKENS)")
    content = list(reply.message.content)
    if content and content[-1]["type"] == "toolRequest":
        last = content[-1]
        name = conv.tool_call_name(last) or "the tool"
        content[-1] = conv.tool_request_error(
            last["id"], f"The call to {name} was cut off at the output limit before its arguments were complete, "
                        "so it was not run. Make the call again with shorter arguments, or split the work.")
    message = Message("assistant", content, reply.message.created)
    return ProviderReply(message, reply.usage, reply.model, MAX_TOKENS,
                         [*reply.warnings, output_limit_warning(limit)])


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

    The message holds the joined reasoning (if any) and text first, then the
    tool requests in the order they came: the same shape whether the answer
    was streamed or not.
    """

    def __init__(self) -> None:
        self.thoughts: list[str] = []
        self.texts: list[str] = []
        self.calls: list[dict[str, Any]] = []

    def thinking(self, piece: str) -> None:
        """Reasoning a provider must be sent back (DeepSeek's ``reasoning_content``): kept, not shown."""
        self.thoughts.append(piece)

    def text(self, piece: str) -> TextDelta:
        self.texts.append(piece)
        return TextDelta(piece)

    def call(self, item: dict[str, Any]) -> ToolCallReady:
        self.calls.append(item)
        return ToolCallReady(item)

    def reply(self, usage: Usage, model: str, stop_reason: str = END_TURN, limit: int | None = None,
              provider: str = "model") -> ProviderReply:
        """The whole answer; one the output limit (``limit``, if known) stopped is ``cut_off``.

        Raises: ProviderError when the limit left no answer at all.
        """
        text, thought = "".join(self.texts), "".join(self.thoughts)
        content = ([conv.thinking(thought)] if thought else []) + ([conv.text(text)] if text else []) + self.calls
        reply = ProviderReply(Message("assistant", content), usage, model, stop_reason)
        return cut_off(reply, limit, provider) if stop_reason == MAX_TOKENS else reply


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
