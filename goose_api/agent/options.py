"""What one turn may ask beyond its prompt: a model of its own and extra instructions.

The dialects (the OpenAI Responses and Chat Completions APIs) let a request
name a model (``goose:<provider>/<model>``) and give instructions; they apply
to that turn only and never change the server's provider for anyone else. A
run keeps them in its record, so a resumed or queued turn runs with them too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TurnOptions:
    provider: str | None = None      # with ``model``: this turn's provider instead of the server's
    model: str | None = None
    instructions: str | None = None  # added to the system prompt of this turn

    @property
    def choice(self) -> tuple[str, str] | None:
        """(provider, model) when the turn picks its own, else None."""
        return (self.provider, self.model) if self.provider and self.model else None

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "TurnOptions":
        data = data or {}
        return cls(data.get("provider"), data.get("model"), data.get("instructions"))
