"""Resume: an interrupted run goes on from its last saved step; a tool that had started never runs again silently.

A worker's ``close()`` (what gunicorn's worker_exit does) and ``begin_shutdown()``
(its SIGTERM hook) interrupt runs here; tests/live/test_durable.py does the same
with kill -9 on a real gunicorn.
"""

from __future__ import annotations

import threading

import pytest

from goose_api import create_app
from goose_api.conversation import INTERRUPTED_TEXT
from goose_api.runs.state import new_record
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.gates import Gate
from tests.support.goose_format import assert_goose_session, goose_file, journal_entries
from tests.support.mcp_fixtures import wait_until


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def lines(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def steps(dirs, session_id: str, call_id: str) -> list[str]:
    return [e["step"] for e in journal_entries(dirs, session_id) if e.get("call") == call_id]


def state(client: ApiClient, session_id: str) -> dict:
    status, body, _ = client.get(f"/session/{session_id}")
    assert status == 200, body
    return body


def cut_during_a_tool(fake_openai, dirs, settings, calls: list[ToolCall], marker: str) -> str:
    """Start a turn whose tool call runs until the worker closes; returns the interrupted run's id."""
    first = create_app(settings)
    fake_openai.add(Reply("", tool_calls=calls))
    _, body, _ = ApiClient(first.test_client()).post("/session/start",
                                                     {"prompt": "work", "session_id": "cut", "async": True})
    wait_until(lambda: (dirs["work"] / marker).exists(), 20, "the tool call to start")
    first.extensions["goose_api"].close()
    return body["run_id"]


@pytest.fixture
def restarted(fake_openai, dirs):
    apps = []

    def make(**overrides):
        app = create_app(settings_for(fake_openai, dirs, **overrides))
        apps.append(app)
        return ApiClient(app.test_client())
    yield make
    for app in apps:
        app.extensions["goose_api"].close()


@pytest.mark.slow
def test_a_started_tool_is_answered_with_the_interrupted_text_and_not_run_again(fake_openai, dirs, restarted):
    cut = cut_during_a_tool(fake_openai, dirs, settings_for(fake_openai, dirs),
                            [shell("echo ran >> ran.txt && sleep 30", "c1")], "ran.txt")
    client = restarted()
    assert state(client, "cut")["state"] == "interrupted"
    fake_openai.add(Reply("picked up"))
    status, body, _ = client.post("/session/cut/resume", {})
    assert status == 200, body
    assert (body["response"], body["resumed_from"]) == ("picked up", cut)
    assert body["message"] == f"Resumed run {cut}: picked up"
    assert body["messages"][0]["content"] == [{"type": "toolResponse", "id": "c1",
                                               "toolResult": {"status": "error", "error": INTERRUPTED_TEXT}}]
    assert lines(dirs["work"] / "ran.txt") == 1, "the tool ran once"
    assert steps(dirs, "cut", "c1") == ["requested", "approved", "started", "finished"]
    assert fake_openai.requests[-1].body["messages"][-1]["content"].endswith(INTERRUPTED_TEXT)
    assert state(client, "cut")["state"] == "idle"
    assert_goose_session(goose_file(dirs, "cut"))
    status, body, _ = client.post("/session/cut/resume", {})
    assert (status, body["error"]) == (409, "not_resumable"), body


@pytest.mark.slow
def test_a_finished_tool_keeps_its_answer_and_an_unstarted_one_runs(fake_openai, dirs, restarted):
    """Answers of one message are saved together: the journal keeps the first call's until the resume."""
    cut_during_a_tool(fake_openai, dirs, settings_for(fake_openai, dirs),
                      [shell("echo a >> a.txt && echo done-a", "ca"), shell("echo b >> b.txt && sleep 30", "cb"),
                       shell("echo c >> c.txt", "cc")], "b.txt")
    client = restarted()
    fake_openai.add(Reply("all answered"))
    status, body, _ = client.post("/session/cut/resume", {})
    assert status == 200, body
    answers = {r["id"]: r["toolResult"] for r in body["messages"][0]["content"]}
    assert answers["ca"]["status"] == "success" and "done-a" in answers["ca"]["value"][0]["text"]
    assert answers["cb"] == {"status": "error", "error": INTERRUPTED_TEXT}
    assert answers["cc"]["status"] == "success"
    assert [lines(dirs["work"] / f) for f in ("a.txt", "b.txt", "c.txt")] == [1, 1, 1]
    assert steps(dirs, "cut", "ca").count("started") == 1 and steps(dirs, "cut", "cc").count("started") == 1
    assert_goose_session(goose_file(dirs, "cut"))


@pytest.mark.parametrize("action, runs, answer", [("deny", 1, INTERRUPTED_TEXT), ("allow_once", 2, None)])
@pytest.mark.slow
def test_resume_started_tools_ask_holds_the_call_for_approval(fake_openai, dirs, restarted, action, runs, answer):
    settings = settings_for(fake_openai, dirs, resume_started_tools="ask")
    cut_during_a_tool(fake_openai, dirs, settings, [shell("echo ran >> ran.txt && test -f go || sleep 30", "c1")],
                      "ran.txt")
    (dirs["work"] / "go").touch()  # a second run, if allowed, ends at once
    client = restarted(resume_started_tools="ask")
    status, body, _ = client.post("/session/cut/resume", {})
    assert (status, body["status"]) == (200, "waiting_approval"), body
    [pending] = body["pending_approvals"]
    assert pending["id"] == "c1" and "started before the run was interrupted" in pending["reason"]
    assert lines(dirs["work"] / "ran.txt") == 1, "nothing runs before the user decides"
    fake_openai.add(Reply("decided"))
    status, body, _ = client.post("/session/cut/confirm", {"id": "c1", "action": action})
    assert (status, body["response"]) == (200, "decided"), body
    assert lines(dirs["work"] / "ran.txt") == runs
    result = body["messages"][0]["content"][0]["toolResult"]
    assert result == {"status": "error", "error": answer} if answer else result["status"] == "success"
    assert_goose_session(goose_file(dirs, "cut"))


@pytest.mark.slow
def test_sigterm_stops_at_a_saved_step_answers_waiters_at_once_and_resumes(fake_openai, dirs, restarted):
    # A step in flight may take up to the graceful timeout less a margin (here ~10 minutes): the waiter
    # must be answered as soon as the step is saved, not when that budget runs out.
    app = create_app(settings_for(fake_openai, dirs, graceful_timeout=600))
    client = ApiClient(app.test_client())
    gate = Gate()
    fake_openai.add(Reply("Let me run it.", tool_calls=[shell("echo ran >> ran.txt", "c1")], gate=gate))
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(
        client.post("/session/start", {"prompt": "go", "session_id": "term"})))
    waiter.start()
    gate.wait_reached()
    app.extensions["goose_api"].begin_shutdown()  # what the worker's SIGTERM handler calls
    gate.open()  # the step in flight (the provider call) finishes and is saved
    waiter.join(120)
    assert answers, "the waiting request is answered once the step in flight is saved"
    status, body, response = answers[0]
    assert (status, body["error"], body["reason"]) == (503, "run_interrupted", "shutdown"), body
    assert "POST /session/term/resume" in body["message"] and response.headers["Retry-After"]
    assert not (dirs["work"] / "ran.txt").exists(), "the tool call after the saved step did not start"
    _, messages = assert_goose_session(goose_file(dirs, "term"))
    assert messages[-1]["content"][1]["type"] == "toolRequest", "the provider's answer was saved"
    status, body, _ = client.post("/session/reply", {"prompt": "more", "session_id": "term"})
    assert (status, body["error"]) == (503, "server_stopping"), body
    app.extensions["goose_api"].close()
    fake_openai.add(Reply("ran it"))
    status, body, _ = restarted().post("/session/term/resume", {})
    assert (status, body["response"]) == (200, "ran it"), body
    assert lines(dirs["work"] / "ran.txt") == 1 and steps(dirs, "term", "c1").count("started") == 1


@pytest.mark.slow
def test_auto_resume_at_boot(fake_openai, dirs, restarted):
    first = create_app(settings_for(fake_openai, dirs))
    gate = Gate()
    fake_openai.add(Reply("never seen", gate=gate))
    ApiClient(first.test_client()).post("/session/start", {"prompt": "go", "session_id": "auto", "async": True})
    gate.wait_reached()
    first.extensions["goose_api"].close()
    gate.open()  # the abandoned call's answer goes nowhere
    fake_openai.add(Reply("resumed by itself"))
    client = restarted(auto_resume=True)
    done = wait_until(lambda: (s := state(client, "auto"))["state"] == "idle" and s, 20, "the automatic resume")
    assert done["messages"][-1]["content"][0]["text"] == "resumed by itself"
    assert [m["role"] for m in done["messages"]] == ["user", "assistant"]
    assert_goose_session(goose_file(dirs, "auto"))


def test_a_prompt_the_crash_left_unsaved_is_not_lost(client, app, fake_openai, dirs):
    """The window between a run's record and its first save: the record keeps the prompt for the resume."""
    fake_openai.add(Reply("first answer"))
    client.post("/session/start", {"prompt": "first", "session_id": "early"})
    state_store = app.extensions["goose_api"].runs.state
    record = state_store.read("early")
    owner = {"pid": 2**22 + 1, "host": record["owner"]["host"], "instance": "gone"}  # no such process
    state_store.write(new_record("early", "run_crashed", owner, kind="reply", prompt="the lost prompt",
                                 first_message=2, event_base=record["last_event_id"]))
    assert state(client, "early")["state"] == "interrupted"
    fake_openai.add(Reply("answered after all"))
    status, body, _ = client.post("/session/early/resume", {})
    assert (status, body["response"]) == (200, "answered after all"), body
    _, messages = assert_goose_session(goose_file(dirs, "early"))
    assert [m["content"][0]["text"] for m in messages] == ["first", "first answer", "the lost prompt",
                                                           "answered after all"]
