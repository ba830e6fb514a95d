"""The agent loop in one process: a scripted provider, in-memory tools, a driver; real session files.

Each test scripts the provider's answers, runs one turn (``Agent.reply`` or
``Agent.resume``) and checks the events, what the provider received, the tool
calls made, the journal and the history saved on disk.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from goose_api import conversation as conv
from goose_api.agent.approvals import ALLOW_ONCE, ALWAYS_ALLOW, DENY, ApprovalPolicy, ToolPermissions
from goose_api.agent.context_window import ContextWindow
from goose_api.agent.control import APPROVED, FINISHED, REQUESTED, STARTED, CallState
from goose_api.agent.events import (
    ApprovalRequired,
    MessageAdded,
    TextChunk,
    ToolAnswered,
    ToolRequested,
    TurnFinished,
    TurnWarning,
)
from goose_api.agent.loop import CANCELLED_TEXT, MAX_TURNS_TEXT, Agent
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.sessions.store import Session, SessionStore
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir
from tests.support.agent_fakes import Answer, Call, Driver, MemoryTools, Prior, Refuse, ScriptedProvider
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session


class World:
    """One agent over a temp data dir; ``turn`` runs a reply to its end and returns its events."""

    def __init__(self, tmp_path):
        self.data = DataDir.at(tmp_path / "data", tmp_path / "sessions")
        self.store = SessionStore(self.data)
        self.provider = ScriptedProvider()
        self.tools = MemoryTools({"mem": "Remember things for the user."})
        self.tools.add("mem__echo", lambda args: [conv.text(str(args.get("text", "")))])
        self.tools.add("mem__peek", lambda args: [conv.text("peeked")], read_only=True)
        self.work = tmp_path / "work"
        self.work.mkdir()

    def agent(self, *, mode: str = "auto", max_turns: int = 50, **settings: Any) -> Agent:
        context = ContextWindow(Settings(**settings))
        policy = ApprovalPolicy(mode, ToolPermissions(self.data.permissions))
        return Agent(self.store, lambda: self.provider, self.tools, context, policy, max_turns)

    def session(self, session_id: str = "s", *history: Message) -> Session:
        session = self.store.create(session_id, str(self.work))
        if history:
            self.store.append(session, *history)
        return session

    def saved(self, session_id: str = "s") -> list[dict[str, Any]]:
        return assert_goose_session(self.store.path(session_id))[1]


@pytest.fixture
def world(tmp_path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.provider.assert_done()


def finished(events: list[Any]) -> TurnFinished:
    assert isinstance(events[-1], TurnFinished), events[-1]
    return events[-1]


def in_thread(events: Iterator[Any]) -> tuple[threading.Thread, list[Any]]:
    """Consume a turn's events on another thread (so the test can cancel or decide meanwhile)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.extend(events), daemon=True)
    thread.start()
    return thread, out


# --- answers and tools ------------------------------------------------------------------

def test_a_text_answer_is_saved_and_the_provider_sees_the_prompt(world):
    world.provider.add(Answer("Hello there.", usage=(12, 3)))
    events = list(world.agent().reply(world.session(), "hi", Driver()))
    done = finished(events)
    assert (done.status, done.response, done.usage.to_json()) == (
        "success", "Hello there.", {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15})
    assert [type(e) for e in events] == [MessageAdded, MessageAdded, TurnFinished]
    request = world.provider.requests[0]
    assert request.messages == [Message.user("hi").to_json() | {"created": request.messages[0]["created"]}]
    assert request.tools == ["mem__echo", "mem__peek"] and not request.streamed
    assert "## mem\nRemember things for the user." in request.system and str(world.work) in request.system
    saved = world.saved()
    assert [(m["role"], m["content"]) for m in saved] == [("user", [conv.text("hi")]),
                                                           ("assistant", [conv.text("Hello there.")])]
    meta, _ = assert_goose_session(world.store.path("s"))
    assert (meta["input_tokens"], meta["accumulated_total_tokens"]) == (12, 15)


def test_tool_calls_run_and_their_answers_reach_the_next_call(world):
    driver = Driver()
    world.provider.add(Answer("Let me.", calls=[Call("mem__echo", {"text": "one"}, id="c1"),
                                                Call("mem__echo", {"text": "two"}, id="c2")]),
                       Answer("Echoed both."))
    events = list(world.agent().reply(world.session(), "echo twice", driver))
    assert finished(events).response == "Echoed both."
    assert [(c.name, c.arguments, c.working_dir) for c in world.tools.calls] == [
        ("mem__echo", {"text": "one"}, str(world.work)), ("mem__echo", {"text": "two"}, str(world.work))]
    answers = [e.content for e in events if isinstance(e, ToolAnswered)]
    assert [(conv.call_id(a), conv.tool_result_text(a)) for a in answers] == [("c1", "one"), ("c2", "two")]
    assert [conv.call_id(e.content) for e in events if isinstance(e, ToolRequested)] == ["c1", "c2"]
    second = world.provider.requests[1].messages
    assert [m["role"] for m in second] == ["user", "assistant", "user"] and second[2]["content"] == answers
    assert driver.steps_of("c1") == [REQUESTED, APPROVED, STARTED, FINISHED]
    assert [m["role"] for m in world.saved()] == ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize("call, says", [
    (Call("mem__nosuch", {}, id="c1"), "Unknown tool 'mem__nosuch'"),
    (Call("mem__broken", {}, id="c1"), "Tool mem__broken failed: disk on fire"),
    (Call("mem__echo", "{not json", id="c1"), "Could not parse the tool call: arguments are not JSON"),
])
def test_an_unknown_failing_or_unparsable_tool_is_an_observation_and_the_loop_goes_on(world, call, says):
    def broken(args):
        raise OSError("disk on fire")
    world.tools.add("mem__broken", broken)
    world.provider.add(Answer(calls=[call]), Answer("I could not do that."))
    events = list(world.agent().reply(world.session(), "try it", Driver()))
    assert (finished(events).status, finished(events).response) == ("success", "I could not do that.")
    answer = world.provider.requests[1].messages[2]["content"][0]
    assert conv.call_id(answer) == "c1" and says in conv.tool_result_error(answer)


def test_max_turns_stops_the_loop_with_goose_s_question(world):
    world.provider.add(*[Answer(calls=[Call("mem__echo", {"text": str(n)})]) for n in range(2)])
    events = list(world.agent(max_turns=2).reply(world.session(), "loop forever", Driver()))
    done = finished(events)
    assert (done.status, done.response) == ("warning", MAX_TURNS_TEXT)
    assert done.warnings == ["Stopped after max_turns (2) provider calls"]
    assert any(isinstance(e, TurnWarning) for e in events) and len(world.provider.requests) == 2
    assert world.saved()[-1]["content"] == [conv.text(MAX_TURNS_TEXT)]


def test_a_streamed_turn_yields_text_chunks_then_the_same_message(world):
    world.provider.add(Answer("Streaming along.", chunk=5))
    events = list(world.agent().reply(world.session(), "stream", Driver(), stream=True))
    assert [e.text for e in events if isinstance(e, TextChunk)] == ["Strea", "ming ", "along", "."]
    assert world.provider.requests[0].streamed and finished(events).response == "Streaming along."


def test_a_provider_error_propagates_after_the_prompt_is_saved(world):
    world.provider.add(Refuse(ProviderError.AUTH, "bad key"))
    with pytest.raises(ProviderError) as raised:
        list(world.agent().reply(world.session(), "hello?", Driver()))
    assert raised.value.kind == ProviderError.AUTH
    assert [m["content"] for m in world.saved()] == [[conv.text("hello?")]]


def test_tool_requests_a_crash_left_open_are_answered_before_the_next_prompt(world):
    session = world.session("s", Message.user("go"), Message.assistant(conv.tool_request("old", "mem__echo", {})))
    world.provider.add(Answer("Fresh start."))
    list(world.agent().reply(session, "again", Driver()))
    saved = world.saved()
    assert saved[2]["content"] == [conv.tool_error("old", conv.INTERRUPTED_TEXT)]
    assert saved[3]["content"] == [conv.text("again")] and world.tools.calls == []


# --- cancel -----------------------------------------------------------------------------

def test_a_cancel_during_the_provider_call_abandons_it_and_keeps_the_history_valid(world):
    gate = Gate()
    world.provider.add(Answer("never seen", gate=gate))
    driver = Driver()
    thread, events = in_thread(world.agent().reply(world.session(), "slow", driver))
    gate.wait_reached()
    driver.cancel()
    thread.join(10)
    gate.open()
    done = finished(events)
    assert (done.status, done.cancelled) == ("cancelled", "the provider call to scripted/scripted-1")
    assert [m["content"] for m in world.saved()] == [[conv.text("slow")]]


def test_a_cancel_during_a_tool_call_answers_it_and_the_calls_after_it_as_cancelled(world):
    gate = Gate()
    world.tools.add("mem__wait", lambda args: [conv.text("finished")] if gate.hold() else [])
    world.provider.add(Answer(calls=[Call("mem__wait", {}, id="c1"), Call("mem__echo", {"text": "x"}, id="c2")]))
    driver = Driver()
    thread, events = in_thread(world.agent().reply(world.session(), "wait", driver))
    gate.wait_reached()
    driver.cancel()
    thread.join(10)
    gate.open()
    assert finished(events).cancelled == "the tool call mem__wait"
    answers = world.saved()[-1]["content"]
    assert answers == [conv.tool_error("c1", CANCELLED_TEXT), conv.tool_error("c2", CANCELLED_TEXT)]
    assert [c.name for c in world.tools.calls] == ["mem__wait"], "the call after the cancel never ran"
    assert driver.steps_of("c2") == [REQUESTED, FINISHED]


def test_a_stop_leaves_unanswered_calls_open_for_a_resume(world):
    gate = Gate()
    world.tools.add("mem__wait", lambda args: [conv.text("finished")] if gate.hold() else [])
    world.provider.add(Answer(calls=[Call("mem__wait", {}, id="c1"), Call("mem__echo", {"text": "x"}, id="c2")]))
    driver = Driver()
    thread, events = in_thread(world.agent().reply(world.session(), "wait", driver))
    gate.wait_reached()
    driver.stop_event.set()  # shutdown: the step in flight finishes, the next one does not start
    gate.open()
    thread.join(10)
    assert finished(events).cancelled is not None
    assert world.saved()[-1]["role"] == "assistant", "the answers are not saved: a resume gives them"
    assert driver.steps_of("c1") == [REQUESTED, APPROVED, STARTED, FINISHED] and driver.steps_of("c2") == [REQUESTED]


# --- approvals --------------------------------------------------------------------------

@pytest.mark.parametrize("action, ran", [(ALLOW_ONCE, True), (DENY, False)])
def test_approve_mode_asks_and_follows_the_decision(world, action, ran):
    driver = Driver({"c1": action})
    world.provider.add(Answer(calls=[Call("mem__echo", {"text": "hi"}, id="c1")]), Answer("ok"))
    events = list(world.agent(mode="approve").reply(world.session(), "echo", driver))
    asked = [e for e in events if isinstance(e, ApprovalRequired)]
    assert [conv.call_id(e.content) for e in asked] == ["c1"] and asked[0].reason is None
    answer = world.provider.requests[1].messages[2]["content"][0]
    if ran:
        assert conv.tool_result_text(answer) == "hi" and driver.steps_of("c1")[1] == APPROVED
    else:
        assert conv.tool_result_text(answer) == conv.DECLINED_TEXT and world.tools.calls == []


def test_a_turn_waits_for_a_decision_the_user_sends_later(world):
    driver = Driver()
    world.provider.add(Answer(calls=[Call("mem__echo", {"text": "later"}, id="c1")]), Answer("ok"))
    thread, events = in_thread(world.agent(mode="approve").reply(world.session(), "echo", driver))
    driver.asked.wait_reached()
    assert world.tools.calls == [], "nothing runs before the decision"
    driver.decide("c1", ALLOW_ONCE)
    thread.join(10)
    assert finished(events).response == "ok" and [c.arguments for c in world.tools.calls] == [{"text": "later"}]


def test_always_allow_is_remembered_for_every_later_call_of_that_key(world):
    world.provider.add(Answer(calls=[Call("mem__echo", {"text": "a"}, id="c1")]), Answer("one"),
                       Answer(calls=[Call("mem__echo", {"text": "b"}, id="c2")]), Answer("two"),
                       Answer(calls=[Call("mem__echo", {"text": "c"}, id="c3")]), Answer("three"))
    agent = world.agent(mode="approve")
    session = world.session()
    list(agent.reply(session, "first", Driver({"c1": ALWAYS_ALLOW})))
    events = list(agent.reply(session, "second", Driver()))  # no decision scripted: it must not ask
    assert not any(isinstance(e, ApprovalRequired) for e in events) and len(world.tools.calls) == 2
    assert ToolPermissions(world.data.permissions).always_allowed("mem__echo", "alice")
    assert not ToolPermissions(world.data.permissions).always_allowed("mem__echo", "bob")
    events = list(agent.reply(session, "third", Driver({"c3": ALLOW_ONCE}, client="bob")))
    assert any(isinstance(e, ApprovalRequired) for e in events), "another key's turn still asks"


def test_smart_approve_runs_read_only_tools_and_asks_for_the_rest(world):
    driver = Driver({"c2": DENY})
    world.provider.add(Answer(calls=[Call("mem__peek", {}, id="c1"), Call("mem__echo", {}, id="c2")]), Answer("ok"))
    events = list(world.agent(mode="smart_approve").reply(world.session(), "look", driver))
    assert [conv.call_id(e.content) for e in events if isinstance(e, ApprovalRequired)] == ["c2"]
    assert [c.name for c in world.tools.calls] == ["mem__peek"]


def test_chat_mode_offers_no_tools_and_answers_a_call_with_goose_s_text(world):
    world.provider.add(Answer(calls=[Call("mem__echo", {}, id="c1")]), Answer("Here is the plan."))
    list(world.agent(mode="chat").reply(world.session(), "plan it", Driver()))
    assert world.provider.requests[0].tools == [] and world.tools.calls == []
    assert "No tools are available" in world.provider.requests[0].system
    answer = world.provider.requests[1].messages[2]["content"][0]
    assert conv.tool_result_text(answer) == conv.CHAT_MODE_TEXT


# --- resume -----------------------------------------------------------------------------

def interrupted(world: World, *call_ids: str) -> Session:
    """A session whose last message asks for tools the interrupted run never answered."""
    calls = [conv.tool_request(call_id, "mem__echo", {"text": call_id}) for call_id in call_ids]
    return world.session("r", Message.user("do it"), Message.assistant("Working.", *calls))


def test_resume_answers_each_call_as_far_as_the_journal_says_it_got(world):
    session = interrupted(world, "done", "started", "approved", "asked")
    saved_answer = conv.tool_response("done", [conv.text("from the journal")])
    prior = Prior({"done": CallState("done", FINISHED, saved_answer), "started": CallState("started", STARTED),
                   "approved": CallState("approved", APPROVED), "asked": CallState("asked", REQUESTED)})
    world.provider.add(Answer("All answered."))
    events = list(world.agent().resume(session, Driver(), prior))
    assert finished(events).response == "All answered."
    answers = {conv.call_id(a): a for a in world.saved("r")[2]["content"]}
    assert answers["done"] == saved_answer, "a finished call is not run again"
    assert answers["started"] == conv.tool_error("started", conv.INTERRUPTED_TEXT), "never run again silently"
    assert conv.tool_result_text(answers["approved"]) == "approved" and conv.tool_result_text(answers["asked"]) == "asked"
    assert [c.arguments["text"] for c in world.tools.calls] == ["approved", "asked"]


def test_resume_asks_again_for_a_call_that_had_started_when_so_configured(world):
    session = interrupted(world, "c1")
    driver = Driver({"c1": ALLOW_ONCE})
    world.provider.add(Answer("Ran it again."))
    events = list(world.agent().resume(session, driver, Prior({"c1": CallState("c1", STARTED)}, ask_started=True)))
    asked = [e for e in events if isinstance(e, ApprovalRequired)]
    assert len(asked) == 1 and "started before the run was interrupted" in asked[0].reason
    assert [c.arguments for c in world.tools.calls] == [{"text": "c1"}]


def test_resume_of_a_turn_that_had_its_answer_does_nothing(world):
    session = world.session("r", Message.user("hi"), Message.assistant("Already answered."))
    events = list(world.agent().resume(session, Driver(), Prior()))
    assert finished(events).response == "Already answered." and world.provider.requests == []


def test_resume_before_the_prompt_was_saved_starts_the_turn_over(world):
    world.provider.add(Answer("From the top."))
    events = list(world.agent().resume(world.session(), Driver(), Prior(), prompt="the lost prompt"))
    assert finished(events).response == "From the top."
    assert world.saved()[0]["content"] == [conv.text("the lost prompt")]


# --- the context window -----------------------------------------------------------------

def long_history(turns: int) -> list[Message]:
    history = []
    for n in range(turns):
        history += [Message.user(f"question {n} " + "words " * 200), Message.assistant(f"answer {n} " + "x" * 800)]
    return history


def test_a_history_over_the_window_is_truncated_before_the_call(world):
    session = world.session("s", *long_history(20))
    world.provider.add(Answer("Short now."))
    events = list(world.agent(context_limit=4_000, context_strategy="truncate").reply(session, "latest", Driver()))
    done = finished(events)
    assert done.status == "warning" and "oldest message(s) were removed" in done.warnings[0]
    sent = world.provider.requests[0].messages
    assert len(sent) < 41 and sent[-1]["content"] == [conv.text("latest")]
    assert len(world.saved()) == len(sent) + 1, "the reduced history is what is saved"


def test_a_history_over_the_window_is_summarized_by_the_model(world):
    session = world.session("s", *long_history(20))
    world.provider.add(Answer("They asked twenty questions.", usage=(100, 10)), Answer("Carrying on."))
    events = list(world.agent(context_limit=4_000, context_strategy="summarize").reply(session, "next", Driver()))
    summary_call, turn_call = world.provider.requests
    assert summary_call.tools == [] and "question 19" in summary_call.messages[0]["content"][0]["text"]
    assert turn_call.messages[0]["content"][0]["text"].endswith("They asked twenty questions.")
    assert turn_call.messages[-1]["content"] == [conv.text("next")]
    assert finished(events).usage.input_tokens == 110, "the summarizing call's tokens count"


def test_a_context_length_error_compacts_once_and_retries(world):
    session = world.session("s", *long_history(6))
    world.provider.add(Refuse(ProviderError.CONTEXT_LENGTH, "too long"), Answer("Fits now."))
    events = list(world.agent(context_strategy="truncate").reply(session, "again", Driver()))
    first, retry = world.provider.requests
    assert len(retry.messages) < len(first.messages) and finished(events).response == "Fits now."


def test_a_context_length_error_with_nothing_left_to_cut_surfaces(world):
    world.provider.add(Refuse(ProviderError.CONTEXT_LENGTH, "too long"))
    with pytest.raises(ProviderError) as raised:
        list(world.agent(context_strategy="truncate").reply(world.session(), "one prompt", Driver()))
    assert raised.value.kind == ProviderError.CONTEXT_LENGTH


# --- the scripted provider is as strict as a real one -----------------------------------

def test_the_scripted_provider_refuses_a_history_a_real_api_would(world):
    session = world.session("s", Message.user("go"), Message.assistant(conv.tool_request("open", "mem__echo", {})))
    with pytest.raises(ProviderError):
        world.provider.complete("", session.messages, [])
    with pytest.raises(ProviderError):  # and a call with nothing scripted
        world.provider.complete("", [Message.user("hi")], [])
    with pytest.raises(AssertionError, match="unanswered|no scripted step left"):
        world.provider.assert_done()
    world.provider.violations.clear()
