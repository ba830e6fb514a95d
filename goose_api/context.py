"""Placeholder until the providers branch lands (context-window management)."""

from dataclasses import dataclass


@dataclass
class FitResult:
    messages: list
    changed: bool = False
    note: str | None = None


class ContextManager:
    def __init__(self, settings):
        self.settings = settings

    def fit(self, provider, system, messages, tools):
        return FitResult(messages)

    def compact(self, provider, system, messages, tools):
        return FitResult(messages)
