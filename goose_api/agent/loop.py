"""The agent loop.

``Agent.reply`` appends the user's prompt, then asks the provider for an
answer and runs the tools it requests until it answers without tools or
``max_turns`` is reached. Every message is saved the moment it exists, and
every tool request is answered by a tool response with the same id, so the
session file stays a valid goose history whatever fails or is cancelled.

The turn's driver (``runs/worker.py``) supervises it through a ``TurnControl``: a
cancel event the loop looks at between steps and while it waits for the
provider or a tool (both are cancellable calls, ``cancellable.py``), a stop
event (shutdown: the step in flight finishes, the next one does not start, and
unanswered tool calls stay unanswered for a resume), the user's decision on a
tool call that needs approval, and the run journal, which hears of each tool
call's step before it takes effect (``journal.py``).

``Agent.resume`` drives an interrupted turn on from its last saved step: the
tool calls the session's last message left unanswered are answered from the
journal (a finished call's saved answer; goose's interrupted text, or a new
approval, for a call that started but did not finish) or run if they never
started; then the loop goes on.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from functools import partial
from typing import Any, Callable, Iterator, Protocol

from goose_api import conversation as conv
from goose_api.agent.approvals import ALWAYS_ALLOW, ASK, DENY, SKIP, ApprovalPolicy
from goose_api.agent.cancellable import TurnCancelled, cancellable_call
from goose_api.agent.control import APPROVED, FINISHED, REQUESTED, STARTED, Recovery, TurnControl
from goose_api.agent.events import (
    ApprovalRequired,
    MessageAdded,
    Notification,
    TextChunk,
    ToolAnswered,
    ToolRequested,
    TurnFinished,
    TurnWarning,
)
from goose_api.agent.options import TurnOptions
from goose_api.agent.tool_output import limit_content, limit_text
from goose_api.conversation import Message
from goose_api.errors import ExtensionError, ProviderError
from goose_api.providers.base import USAGE_FIELDS, Provider, ProviderReply, TextDelta, ToolSpec, Usage
from goose_api.sessions.store import Session, SessionStore

log = logging.getLogger(__name__)

MAX_TURNS_TEXT = ("I've reached the maximum number of actions I can do without user input. "
                  "Would you like me to continue?")
CANCELLED_TEXT = "cancelled"


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
    def __init__(self, store: SessionStore, provider: Callable[..., Provider], registry: ToolRegistry,
                 context: ContextPolicy, policy: ApprovalPolicy, max_turns: int = 50,
                 max_tool_output: int = 200_000):
        self.store = store
        self.provider = provider
        self.registry = registry
        self.context = context
        self.policy = policy
        self.max_turns = max_turns
        self.max_tool_output = max_tool_output  # characters of one tool result kept (``tool_output.py``)

    def reply(self, session: Session, prompt: str, control: TurnControl, *, stream: bool = False,
              options: TurnOptions | None = None) -> Iterator[Any]:
        """Run one turn; yields events and ends with ``TurnFinished`` (cancelled or not).

        The caller holds the session's lock. A ``ProviderError`` propagates after
        the prompt (and any finished steps) are saved. ``options``: this turn's
        own model and instructions.
        """
        def begin(added: list[Message]) -> Iterator[Any]:
            yield from self._answer_dangling(session, added)
            yield from self._add(session, added, Message.user(prompt))
            return True
        return self._turn(session, control, stream, begin, options=options)

    def resume(self, session: Session, control: TurnControl, recovery: Recovery, *, stream: bool = False,
               prompt: str | None = None, options: TurnOptions | None = None) -> Iterator[Any]:
        """Drive an interrupted turn on from the session's last saved step (see the module's doc).

        ``prompt``: the turn's prompt, when the interruption came before it was saved (the turn starts over).
        """
        if prompt is not None:
            return self.reply(session, prompt, control, stream=stream, options=options)

        def begin(added: list[Message]) -> Iterator[Any]:
            last = session.messages[-1] if session.messages else None
            if last is not None and last.role == "assistant" and not last.tool_requests():
                return False  # the turn had its answer before it was cut: nothing to redo
            if last is not None and last.role == "assistant":
                tools = self.policy.offered(self.registry.tools())
                answer = partial(self._resume_tool, recovery=recovery)
                yield from self._answer_tools(session, added, last.tool_requests(), tools, control, answer)
            return True
        return self._turn(session, control, stream, begin, fallback=conv.final_text(session.messages),
                          options=options)

    def _turn(self, session: Session, control: TurnControl, stream: bool,
              begin: Callable[[list[Message]], Iterator[Any]], fallback: str = "",
              options: TurnOptions | None = None) -> Iterator[Any]:
        added: list[Message] = []
        warnings: list[str] = []
        usage = Usage(0, 0, 0)
        cancelled = None
        try:
            if (yield from begin(added)):
                yield from self._loop(session, added, control, stream, warnings, usage, options or TurnOptions())
        except TurnCancelled:
            cancelled = control.cancelled_step()
            log.info("turn cancelled session=%s during=%s", session.id, cancelled)
        for note in warnings:
            yield TurnWarning(note)
        yield TurnFinished(conv.final_text(added) or fallback, added, usage, warnings, cancelled)

    def _loop(self, session: Session, added: list[Message], control: TurnControl, stream: bool,
              warnings: list[str], usage: Usage, options: TurnOptions) -> Iterator[Any]:
        """Provider call, tools, provider call... until an answer without tool calls (or ``max_turns``)."""
        provider = self.provider(options.choice) if options.choice else self.provider()
        tools = self.policy.offered(self.registry.tools())
        system = self.system_prompt(session, tools)
        if options.instructions:
            system += "\n\n# Instructions for this turn\n" + options.instructions
        for _ in range(self.max_turns):
            _check(control)
            control.step(f"the provider call to {provider.name}/{provider.model}")
            reply = yield from self._call(provider, system, session, tools, stream, warnings, usage, control)
            warnings.extend(reply.warnings)  # an answer cut at the output limit, a prompt the provider cut
            _accumulate(usage, reply.usage)
            session.record_usage(reply.usage)
            requests = reply.message.tool_requests()
            for request in requests:
                control.journal(REQUESTED, request)
            yield from self._add(session, added, reply.message)
            if not requests:
                return
            yield from self._answer_tools(session, added, requests, tools, control, self._answer_tool)
        warnings.append(f"Stopped after max_turns ({self.max_turns}) provider calls")
        yield from self._add(session, added, Message.assistant(MAX_TURNS_TEXT))

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
        responses = [conv.tool_error(conv.call_id(r), conv.INTERRUPTED_TEXT) for r in last.tool_requests()]
        yield from self._add(session, added, Message("user", responses))

    def _call(self, provider: Provider, system: str, session: Session, tools: list[ToolSpec],
              stream: bool, warnings: list[str], usage: Usage, control: TurnControl) -> Iterator[Any]:
        fitted = self.context.fit(provider, system, session.messages, tools)
        if fitted.changed:
            yield from self._replace_history(session, fitted, warnings, usage)
        try:
            return (yield from self._provider_reply(provider, system, session.messages, tools, stream, control))
        except ProviderError as exc:
            if exc.kind != ProviderError.CONTEXT_LENGTH:
                raise
            log.info("context length exceeded provider=%s session=%s; compacting", provider.name, session.id)
            fitted = self.context.compact(provider, system, session.messages, tools)
            if not fitted.changed:
                raise
            yield from self._replace_history(session, fitted, warnings, usage)
            return (yield from self._provider_reply(provider, system, session.messages, tools, stream, control))

    def _replace_history(self, session: Session, fitted: FitResult, warnings: list[str],
                         usage: Usage) -> Iterator[Any]:
        """Save the compacted history; a summarizing call's tokens count towards the turn's usage."""
        if fitted.usage is not None:
            _accumulate(usage, fitted.usage)
            session.add_accumulated(fitted.usage)
        self.store.replace_messages(session, fitted.messages)
        if fitted.note:
            warnings.append(fitted.note)
            yield TurnWarning(fitted.note)

    @staticmethod
    def _provider_reply(provider: Provider, system: str, messages: list[Message], tools: list[ToolSpec],
                        stream: bool, control: TurnControl) -> Iterator[Any]:
        """The provider's reply, its text deltas yielded as they arrive; abandoned on cancel."""
        messages = list(messages)  # the loop may change the session's list after abandoning the call

        def work(emit: Callable[[Any], None]) -> ProviderReply:
            if not stream:
                return provider.complete(system, messages, tools)
            for event in provider.stream(system, messages, tools):
                if isinstance(event, TextDelta):
                    emit(TextChunk(event.text))
                elif isinstance(event, ProviderReply):
                    return event
            raise ProviderError(provider.name, ProviderError.UNAVAILABLE, "the stream ended without a reply")
        return (yield from cancellable_call(work, control.cancel_event, f"provider-{provider.name}"))

    def _answer_tools(self, session: Session, added: list[Message], requests: list[dict[str, Any]],
                      tools: list[ToolSpec], control: TurnControl,
                      answer: Callable[..., Iterator[Any]]) -> Iterator[Any]:
        """Answer every request, then save the answers.

        On a cancel, the requests not answered yet get "cancelled"; on a stop
        (shutdown) nothing more is saved: the calls stay open for a resume.
        """
        responses: list[dict[str, Any]] = []
        try:
            for request in requests:
                _check(control)
                control.step(f"the tool call {conv.tool_call_name(request) or '?'}")  # a cancel from here on stops it
                yield ToolRequested(request)
                responses.append((yield from answer(request, session, tools, control)))
                yield ToolAnswered(responses[-1])
        except TurnCancelled:
            if control.stop_event.is_set():
                raise
            for request in requests[len(responses):]:
                responses.append(_answered(control, request, conv.tool_error(conv.call_id(request), CANCELLED_TEXT)))
                yield ToolAnswered(responses[-1])
            yield from self._add(session, added, Message("user", responses))
            raise
        yield from self._add(session, added, Message("user", responses))

    def _answer_tool(self, request: dict[str, Any], session: Session, tools: list[ToolSpec],
                     control: TurnControl) -> Iterator[Any]:
        call_id, name = conv.call_id(request), conv.tool_call_name(request)
        if name is None:
            error = f"Could not parse the tool call: {conv.tool_call_error(request)}"
            return _answered(control, request, conv.tool_error(call_id, error))
        verdict = self.policy.verdict(name, tools, control.client)
        if verdict == SKIP:
            return _answered(control, request, conv.tool_response(call_id, [conv.text(conv.CHAT_MODE_TEXT)]))
        if verdict == ASK:
            action = yield from self._ask(request, control, f"the approval of {name}")
            if action == DENY:
                return _answered(control, request, conv.tool_response(call_id, [conv.text(conv.DECLINED_TEXT)]))
        else:
            control.journal(APPROVED, request, by="policy")
        return (yield from self._run_tool(request, session, control))

    def _resume_tool(self, request: dict[str, Any], session: Session, tools: list[ToolSpec],
                     control: TurnControl, recovery: Recovery) -> Iterator[Any]:
        """A call the interrupted run left unanswered: never run again silently once it had started."""
        prior = recovery.prior(conv.call_id(request))
        if prior is None or prior.step == REQUESTED:
            return (yield from self._answer_tool(request, session, tools, control))
        if prior.step == FINISHED and prior.response is not None:
            return prior.response  # it ran (or was answered) before the interruption: its answer stands
        if prior.step == STARTED:
            if not recovery.ask_started:
                return _answered(control, request, conv.tool_error(conv.call_id(request), conv.INTERRUPTED_TEXT))
            name = conv.tool_call_name(request)
            action = yield from self._ask(request, control, f"the approval to run {name} again",
                                          reason="started before the run was interrupted; it may have run "
                                                 "in part: allow it to run again, or deny")
            if action == DENY:
                return _answered(control, request, conv.tool_error(conv.call_id(request), conv.INTERRUPTED_TEXT))
        return (yield from self._run_tool(request, session, control))  # approved before the interruption

    def _ask(self, request: dict[str, Any], control: TurnControl, what: str,
             reason: str | None = None) -> Iterator[Any]:
        """Wait for the user's decision on a call; journal an approval before it takes effect."""
        name = conv.tool_call_name(request)
        control.step(what)
        yield ApprovalRequired(request, reason)
        action = control.decision(request)
        log.info("tool call decided tool=%s action=%s", name, action)
        if action != DENY:
            control.journal(APPROVED, request, by="user", action=action)
        if action == ALWAYS_ALLOW:
            self.policy.permissions.allow_always(name, control.client)
        return action

    def _run_tool(self, request: dict[str, Any], session: Session, control: TurnControl) -> Iterator[Any]:
        """Call the tool as a cancellable call, yielding its notifications; a cancel raises TurnCancelled."""
        call_id, name = conv.call_id(request), conv.tool_call_name(request)
        arguments = conv.tool_call_arguments(request)
        control.step(f"the tool call {name}")
        control.journal(STARTED, request)
        started = time.monotonic()

        def work(emit: Callable[[Any], None]) -> list[dict[str, Any]]:
            return self.registry.call_tool(name, arguments, working_dir=session.working_dir or None,
                                           on_notification=lambda data: emit(Notification(data)),
                                           cancel_event=control.cancel_event)
        try:
            content = yield from cancellable_call(work, control.cancel_event, f"tool-{name}")
        except ExtensionError as exc:
            if control.cancel_event.is_set():  # cut by the cancel, not finished: answered as the cancel says
                raise TurnCancelled(f"tool-{name}") from None
            log.info("tool call failed tool=%s seconds=%.3f error=%s", name, time.monotonic() - started,
                     exc.message[:500])
            error = limit_text(exc.message, self.max_tool_output)
            return _answered(control, request, conv.tool_error(call_id, error), ran=True)
        log.info("tool call tool=%s seconds=%.3f", name, time.monotonic() - started)
        content = limit_content(content, self.max_tool_output)
        return _answered(control, request, conv.tool_response(call_id, content), ran=True)


def _answered(control: TurnControl, request: dict[str, Any], response: dict[str, Any], ran: bool = False) -> dict:
    """Journal a call's answer (before it is saved with the others) and return it."""
    control.journal(FINISHED, request, response=response, ran=ran)
    return response


def _check(control: TurnControl) -> None:
    if control.cancel_event.is_set() or control.stop_event.is_set():
        raise TurnCancelled("cancelled between steps")


def _accumulate(total: Usage, part: Usage) -> None:
    for name in USAGE_FIELDS:
        value = getattr(part, name)
        if value is not None:
            setattr(total, name, (getattr(total, name) or 0) + value)
