"""Events an agent turn yields.

Blocking answers, streamed answers and background runs all consume the same
events; only the consumer differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from goose_api.conversation import Message
from goose_api.providers.base import Usage


@dataclass(frozen=True)
class MessageAdded:
    """A message was appended to the session file."""

    message: Message


@dataclass(frozen=True)
class TextChunk:
    """Assistant text as it arrives from a streaming provider."""

    text: str


@dataclass(frozen=True)
class ToolRequested:
    content: dict[str, Any]  # the toolRequest item


@dataclass(frozen=True)
class ToolAnswered:
    content: dict[str, Any]  # the toolResponse item


@dataclass(frozen=True)
class ApprovalRequired:
    """A tool call waits for the user's decision (approve / smart_approve modes)."""

    content: dict[str, Any]  # the toolRequest item
    reason: str | None = None  # why it asks (a resumed call that had started before)


@dataclass(frozen=True)
class TurnWarning:
    """Something the user should know but that did not stop the turn."""

    message: str


@dataclass(frozen=True)
class Notification:
    """An MCP progress or log notification from a running tool."""

    data: dict[str, Any]


@dataclass
class TurnFinished:
    response: str
    messages: list[Message]
    usage: Usage
    warnings: list[str] = field(default_factory=list)
    cancelled: str | None = None  # what a cancel stopped ("the provider call to openai/gpt-4o", ...)

    @property
    def status(self) -> str:
        if self.cancelled is not None:
            return "cancelled"
        return "warning" if self.warnings else "success"
