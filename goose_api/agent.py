"""The agent loop.

``Agent.reply`` appends the user's prompt, then asks the provider for an
answer and runs the tools it requests until it answers without tools or
``max_turns`` is reached. Every message is saved the moment it exists, and
every tool request is answered by a tool response with the same id, so the
session file stays a valid goose history whatever fails.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from typing import Any, Callable, Iterator, Protocol

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ExtensionError, ProviderError
from goose_api.events import (MessageAdded, Notification, TextChunk, ToolAnswered, ToolRequested,
                              TurnFinished, Warning)
from goose_api.providers.base import Provider, ProviderReply, TextDelta, ToolSpec, Usage
from goose_api.sessions import Session, SessionStore

log = logging.getLogger(__name__)

MAX_TURNS_TEXT = ("I've reached the maximum number of actions I can do without user input. "
                  "Would you like me to continue?")


class ToolRegistry(Protocol):
    def tools(self) -> list[ToolSpec]: ...

    def instructions(self) -> dict[str, str]: ...

    def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None = None, *,
                  working_dir: str | None = None, on_notification: Callable[[dict], None] | None = None,
                  cancel_event: threading.Event | None = None) -> list[dict[str, Any]]: ...


class FitResult(Protocol):
    messages: list[Message]
    changed: bool
    note: str | None
    usage: Usage | None


class ContextPolicy(Protocol):
    def fit(self, provider: Provider, system: str, messages: list[Message],
            tools: list[ToolSpec]) -> FitResult: ...

    def compact(self, provider: Provider, system: str, messages: list[Message],
                tools: list[ToolSpec]) -> FitResult: ...


class Agent:
    def __init__(self, store: SessionStore, provider: Callable[[], Provider], registry: ToolRegistry,
                 context: ContextPolicy, max_turns: int = 50):
        self.store = store
        self.provider = provider
        self.registry = registry
        self.context = context
        self.max_turns = max_turns

    def reply(self, session: Session, prompt: str, *, stream: bool = False) -> Iterator[Any]:
        """Run one turn; yields events and ends with ``TurnFinished``.

        The caller holds the session's lock. A ``ProviderError`` propagates after
        the prompt (and any finished steps) are saved.
        """
        added: list[Message] = []
        warnings: list[str] = []
        usage = Usage(0, 0, 0)
        yield from self._answer_dangling(session, added)
        yield from self._add(session, added, Message.user(prompt))
        provider = self.provider()
        tools = self.registry.tools()
        system = self.system_prompt(session, tools)
        for _ in range(self.max_turns):
            reply = yield from self._call(provider, system, session, tools, stream, warnings, usage)
            _accumulate(usage, reply.usage)
            session.record_usage(reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens)
            yield from self._add(session, added, reply.message)
            requests = reply.message.tool_requests()
            if not requests:
                break
            responses = []
            for request in requests:
                yield ToolRequested(request)
                response = self._run_tool(request, session)
                yield ToolAnswered(response)
                responses.append(response)
            yield from self._add(session, added, Message("user", responses))
        else:
            warnings.append(f"Stopped after max_turns ({self.max_turns}) provider calls")
            yield from self._add(session, added, Message.assistant(MAX_TURNS_TEXT))
        for note in warnings:
            yield Warning(note)
        yield TurnFinished(conv.final_text(added), added, usage, warnings)

    def system_prompt(self, session: Session, tools: list[ToolSpec]) -> str:
        parts = [
            "You are goose, a general-purpose AI agent. You help the user by answering and, "
            "when tools are available, by using them to act on their behalf.",
            f"The current date and time is {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
            f"The working directory is {session.working_dir or 'not set'} on {platform.system()}.",
        ]
        instructions = self.registry.instructions()
        if tools and instructions:
            parts.append("# Extensions")
            parts.extend(f"## {name}\n{text}" for name, text in sorted(instructions.items()) if text)
        if not tools:
            parts.append("No tools are available in this session; answer directly.")
        return "\n\n".join(parts)

    # --- steps -----------------------------------------------------------------

    def _add(self, session: Session, added: list[Message], message: Message) -> Iterator[Any]:
        self.store.append(session, message)
        added.append(message)
        yield MessageAdded(message)

    def _answer_dangling(self, session: Session, added: list[Message]) -> Iterator[Any]:
        """Answer tool requests left unanswered by a crash, so the history stays valid."""
        last = session.messages[-1] if session.messages else None
        if last is None or last.role != "assistant" or not last.tool_requests():
            return
        responses = [conv.tool_error(r["id"], conv.INTERRUPTED_TEXT) for r in last.tool_requests()]
        yield from self._add(session, added, Message("user", responses))

    def _call(self, provider: Provider, system: str, session: Session, tools: list[ToolSpec],
              stream: bool, warnings: list[str], usage: Usage) -> Iterator[Any]:
        fitted = self.context.fit(provider, system, session.messages, tools)
        if fitted.changed:
            yield from self._replace_history(session, fitted, warnings, usage)
        try:
            return (yield from self._provider_reply(provider, system, session.messages, tools, stream))
        except ProviderError as exc:
            if exc.kind != ProviderError.CONTEXT_LENGTH:
                raise
            log.info("context length exceeded provider=%s session=%s; compacting", provider.name, session.id)
            fitted = self.context.compact(provider, system, session.messages, tools)
            if not fitted.changed:
                raise
            yield from self._replace_history(session, fitted, warnings, usage)
            return (yield from self._provider_reply(provider, system, session.messages, tools, stream))

    def _replace_history(self, session: Session, fitted: FitResult, warnings: list[str],
                         usage: Usage) -> Iterator[Any]:
        """Save the compacted history; a summarizing call's tokens count towards the turn's usage."""
        if fitted.usage is not None:
            _accumulate(usage, fitted.usage)
            session.add_accumulated(fitted.usage.input_tokens, fitted.usage.output_tokens,
                                    fitted.usage.total_tokens)
        self.store.replace_messages(session, fitted.messages)
        if fitted.note:
            warnings.append(fitted.note)
            yield Warning(fitted.note)

    @staticmethod
    def _provider_reply(provider: Provider, system: str, messages: list[Message], tools: list[ToolSpec],
                        stream: bool) -> Iterator[Any]:
        if not stream:
            return provider.complete(system, messages, tools)
        for event in provider.stream(system, messages, tools):
            if isinstance(event, TextDelta):
                yield TextChunk(event.text)
            elif isinstance(event, ProviderReply):
                return event
        raise ProviderError(provider.name, ProviderError.UNAVAILABLE, "the stream ended without a reply")

    def _run_tool(self, request: dict[str, Any], session: Session) -> dict[str, Any]:
        call = request["toolCall"]
        if call["status"] != "success":
            return conv.tool_error(request["id"], f"Could not parse the tool call: {call['error']}")
        name, arguments = call["value"]["name"], call["value"].get("arguments") or {}
        started = time.monotonic()
        try:
            content = self.registry.call_tool(name, arguments, working_dir=session.working_dir or None)
        except ExtensionError as exc:
            log.info("tool call failed tool=%s seconds=%.3f error=%s", name, time.monotonic() - started, exc.message)
            return conv.tool_error(request["id"], exc.message)
        log.info("tool call tool=%s seconds=%.3f", name, time.monotonic() - started)
        return conv.tool_response(request["id"], content)


def _accumulate(total: Usage, part: Usage) -> None:
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        value = getattr(part, key)
        if value is not None:
            setattr(total, key, (getattr(total, key) or 0) + value)
