"""In-process collaborators of the agent loop: a scripted provider, in-memory tools, a turn's driver.

The loop is tested over its own protocols, in one process, with no HTTP:

    provider = ScriptedProvider([Answer(calls=[Call("mem__echo", {"text": "hi"})]), Answer("done")])
    tools = MemoryTools().add("mem__echo", lambda args: [conv.text(args["text"])])
    ...
    provider.assert_done()

``ScriptedProvider`` implements ``providers.base.Provider``: each ``complete`` or
``stream`` call takes the next step, records the request, and is as strict as a
real API (a history a provider would refuse is a violation). A call with no step
left, or a step left unused at ``assert_done``, fails the test. A step may hold
on a ``Gate`` (``tests/support/gates.py``) until the test opens it. ``MemoryTools`` implements
the loop's ``ToolRegistry``; ``Driver`` is a ``TurnControl`` with scripted
approval decisions and a journal in memory; ``Prior`` is a ``Recovery``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from goose_api import conversation as conv
from goose_api.agent.cancellable import TurnCancelled
from goose_api.agent.control import CallState
from goose_api.conversation import Message, MessageFormatError
from goose_api.errors import ProviderError, ToolCallFailed
from goose_api.providers.base import ProviderReply, ReplyBuilder, StreamEvent, ToolSpec, Usage
from tests.support.gates import Gate


@dataclass
class Call:
    """A tool call the scripted model makes; ``arguments`` as a str is an unparsable call."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass
class Answer:
    """A reply: text and/or tool calls, streamed in ``chunk``-character pieces when the call streams."""

    text: str = ""
    calls: list[Call] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)
    gate: Gate | None = None
    chunk: int = 4


@dataclass
class Refuse:
    """The provider fails with ``kind`` (a ``ProviderError`` kind)."""

    kind: str
    detail: str = "scripted failure"
    gate: Gate | None = None


Step = Answer | Refuse


@dataclass
class Request:
    """What one provider call received."""

    system: str
    messages: list[dict[str, Any]]
    tools: list[str]
    streamed: bool


class ScriptedProvider:
    """A ``Provider`` that answers from a script and records every request."""

    def __init__(self, steps: list[Step] | None = None, *, name: str = "scripted", model: str = "scripted-1",
                 context_window: int | None = None):
        self.name, self.model = name, model
        if context_window is not None:
            self.context_window = context_window
        self.steps: list[Step] = list(steps or [])
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._calls = 0

    def add(self, *steps: Step) -> "ScriptedProvider":
        with self._lock:
            self.steps.extend(steps)
        return self

    def assert_done(self) -> None:
        problems = list(self.violations)
        if self.steps:
            problems.append(f"{len(self.steps)} scripted step(s) never requested: {self.steps}")
        assert not problems, "; ".join(problems)

    # --- the Provider protocol ------------------------------------------------------

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply:
        step = self._take(system, messages, tools, streamed=False)
        builder = self._builder(step)
        return builder.reply(Usage(*step.usage), self.model)

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]:
        step = self._take(system, messages, tools, streamed=True)
        builder = ReplyBuilder()
        for start in range(0, len(step.text), step.chunk):
            yield builder.text(step.text[start:start + step.chunk])
        for item in self._calls_of(step):
            yield builder.call(item)
        yield builder.reply(Usage(*step.usage), self.model)

    # --- the script -----------------------------------------------------------------

    def _take(self, system: str, messages: list[Message], tools: list[ToolSpec], streamed: bool) -> Answer:
        problems = _refused_history(messages)
        with self._lock:
            self.requests.append(Request(system, [m.to_json() for m in messages], [t.name for t in tools], streamed))
            step = self.steps.pop(0) if self.steps and not problems else None
            if problems:
                self.violations.append(problems)
            elif step is None:
                self.violations.append("unexpected provider call: no scripted step left")
        if step is None:
            raise ProviderError(self.name, ProviderError.BAD_REQUEST, problems or "no scripted step left")
        if step.gate is not None:
            step.gate.hold()
        if isinstance(step, Refuse):
            raise ProviderError(self.name, step.kind, step.detail)
        return step

    def _builder(self, step: Answer) -> ReplyBuilder:
        builder = ReplyBuilder()
        if step.text:
            builder.text(step.text)
        for item in self._calls_of(step):
            builder.call(item)
        return builder

    def _calls_of(self, step: Answer) -> list[dict[str, Any]]:
        items = []
        for call in step.calls:
            self._calls += 1
            call_id = call.id or f"call_{self._calls}"
            if isinstance(call.arguments, str):
                items.append(conv.tool_request_error(call_id, f"arguments are not JSON: {call.arguments!r}"))
            else:
                items.append(conv.tool_request(call_id, call.name, call.arguments))
        return items


def _refused_history(messages: list[Message]) -> str:
    """Why a real chat API would refuse this history ("" when it would not)."""
    if not messages or messages[0].role != "user":
        return "the history must start with a user message"
    try:
        for message in messages:
            conv.validate_message(message.to_json())
        conv.check_pairs(messages)
    except MessageFormatError as exc:
        return f"not a valid history: {exc}"
    if messages[-1].tool_requests():
        return "the last message asks for tools nobody answered"
    return ""


Tool = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    working_dir: str | None


class MemoryTools:
    """The loop's ``ToolRegistry`` over Python functions; an unknown or failing tool raises ``ToolCallFailed``."""

    def __init__(self, instructions: dict[str, str] | None = None):
        self._tools: dict[str, tuple[ToolSpec, Tool]] = {}
        self._instructions = dict(instructions or {})
        self.calls: list[ToolCallRecord] = []

    def add(self, name: str, run: Tool, *, read_only: bool = False, description: str = "") -> "MemoryTools":
        annotations = {"readOnlyHint": True} if read_only else {}
        spec = ToolSpec(name, description or f"the {name} tool", {"type": "object"}, annotations)
        self._tools[name] = (spec, run)
        return self

    def tools(self) -> list[ToolSpec]:
        return [spec for spec, _ in self._tools.values()]

    def instructions(self) -> dict[str, str]:
        return dict(self._instructions)

    def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None = None, *,
                  working_dir: str | None = None, on_notification: Callable[[dict], None] | None = None,
                  cancel_event: threading.Event | None = None) -> list[dict[str, Any]]:
        self.calls.append(ToolCallRecord(name, dict(arguments), working_dir))
        if name not in self._tools:
            raise ToolCallFailed(f"Unknown tool {name!r}")
        try:
            return self._tools[name][1](arguments)
        except ToolCallFailed:
            raise
        except Exception as exc:  # a failing tool is the model's observation, as the MCP registry makes it
            raise ToolCallFailed(f"Tool {name} failed: {exc}") from None


@dataclass
class Journaled:
    step: str
    call_id: str | None
    data: dict[str, Any]


class Driver:
    """A ``TurnControl``: cancel and stop events, scripted decisions (by call id), a journal in memory.

    A call with no scripted decision waits at ``asked`` (a ``Gate``) until the test decides it
    with ``decide`` or cancels the turn.
    """

    def __init__(self, decisions: dict[str, str] | None = None, client: str | None = "alice"):
        self.client = client  # the key the turn runs for
        self.cancel_event = threading.Event()
        self.stop_event = threading.Event()
        self.decisions = dict(decisions or {})
        self.journaled: list[Journaled] = []
        self.asked = Gate()
        self._step = "the turn before its first step"
        self._cancelled: str | None = None

    def step(self, description: str) -> None:
        self._step = description

    def cancelled_step(self) -> str:
        return self._cancelled or self._step

    def cancel(self) -> None:
        self._cancelled = self._step
        self.cancel_event.set()

    def decide(self, call_id: str, action: str) -> None:
        self.decisions[call_id] = action
        self.asked.open()

    def decision(self, request: dict[str, Any]) -> str:
        call_id = conv.call_id(request)
        if call_id not in self.decisions:
            self.asked.hold(self.cancel_event)  # returns early on a cancel
        if self.cancel_event.is_set() or self.stop_event.is_set():
            raise TurnCancelled("cancelled while waiting for approval")
        return self.decisions[call_id]

    def journal(self, step: str, request: dict[str, Any] | None = None, **data: Any) -> None:
        self.journaled.append(Journaled(step, conv.call_id(request) if request else None, data))

    def steps_of(self, call_id: str) -> list[str]:
        return [entry.step for entry in self.journaled if entry.call_id == call_id]


@dataclass
class Prior:
    """A ``Recovery``: how far each tool call of the interrupted run got."""

    calls: dict[str, CallState] = field(default_factory=dict)
    ask_started: bool = False

    def prior(self, call_id: str) -> CallState | None:
        return self.calls.get(call_id)
