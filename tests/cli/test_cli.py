"""The goose-api command driven as a user would: a subprocess, its stdout, stderr, stdin and exit code.

The servers are real gunicorns on loopback with the scripted fake OpenAI
provider; one runs in ``auto`` mode and one in ``approve`` mode, shared by the
tests of this module (each test uses its own sessions and all of its steps).
The resume test kills the auto server's worker; gunicorn starts another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import requests

from goose_api.client import GooseClient
from goose_api.conversation import DECLINED_TEXT
from tests.fakes.core import Fail, Reply, ToolCall
from tests.support.app import API_KEY, ROOT
from tests.support.gates import Gate
from tests.support.live import LiveServer, free_port, live_env
from tests.support.mcp_fixtures import wait_until
from tests.support.shared_server import (  # noqa: F401
    fake,
    gate,
    kill_worker_of,
    module_server,
    open_gate,
    shared_fake,
    shell,
    wait_at_gate,
)


def cli_env(url: str, home: Path, key: str = API_KEY) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(home), "GOOSE_API_URL": url,
            "GOOSE_API_KEY": key}


def run(server: LiveServer, *args: str, stdin: str = "", key: str = API_KEY,
        home: Path = Path("/nonexistent")) -> subprocess.CompletedProcess:
    """``python -m goose_api ARGS`` against ``server``; a traceback on stderr fails any test."""
    done = subprocess.run([sys.executable, "-m", "goose_api", *args], input=stdin, capture_output=True, text=True,
                          env=cli_env(server.url, home, key), timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture(scope="module")
def server(shared_fake, tmp_path_factory) -> Iterator[LiveServer]:
    yield from module_server(shared_fake, tmp_path_factory, "cli_auto")


@pytest.fixture(scope="module")
def approve_server(shared_fake, tmp_path_factory) -> Iterator[LiveServer]:
    yield from module_server(shared_fake, tmp_path_factory, "cli_approve", GOOSE_API_MODE="approve")


# --- ask -----------------------------------------------------------------------------

def test_ask_streams_the_answer_and_shows_tool_calls(server, fake):
    fake.add(Reply("Checking. ", tool_calls=[shell("echo hello-from-tool", "call_1")], chunk_size=3),
             Reply("The tool said hello.", chunk_size=3))
    done = run(server, "ask", "check the tool")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Checking. \nThe tool said hello.\n"  # only the answer: tool lines go to stderr
    lines = done.stderr.splitlines()
    assert lines[0] == '[tool] developer__shell command="echo hello-from-tool"'
    assert lines[1].startswith("[ok] ") and "hello-from-tool" in lines[1]
    session_id = lines[-1].removeprefix("[session ").removesuffix("]")
    assert GooseClient(server.url, API_KEY).session(session_id)["message_count"] == 4


def test_ask_json_prints_one_object_per_event(server, fake):
    fake.add(Reply("Hello there, friend.", chunk_size=5))
    done = run(server, "ask", "--json", "hello")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == ["message"] * 4 + ["done"]
    assert "".join(e["data"]["text"] for e in events[:-1]) == "Hello there, friend."
    assert events[-1]["data"]["response"] == "Hello there, friend." and events[-1]["data"]["status"] == "success"
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})


def test_ask_without_streaming_prints_the_final_answer(server, fake):
    fake.add(Reply("Just the answer."), Reply("Just the JSON."))
    done = run(server, "ask", "--no-stream", "answer me")
    assert (done.returncode, done.stdout) == (0, "Just the answer.\n")
    done = run(server, "ask", "--no-stream", "--json", "answer me in JSON")
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["response"]) == ("success", "Just the JSON.")


def test_ask_starts_continues_and_picks_the_last_session(server, fake):
    fake.add(Reply("First."), Reply("Second."), Reply("Third."))
    assert run(server, "ask", "--session", "cli_chat", "--new", "my name is Ada").returncode == 0
    done = run(server, "ask", "--session", "cli_chat", "what is my name?")
    assert done.stdout == "Second.\n" and "my name is Ada" in json.dumps(fake.last_body()["messages"])
    done = run(server, "ask", "--last", "and again?")
    assert done.stderr.splitlines()[-1] == "[session cli_chat]"
    assert run(server, "ask", "--session", "cli_nowhere", "hello?").returncode == 1


# --- sessions ------------------------------------------------------------------------

def test_sessions_show_and_rm(server, fake):
    fake.add(Reply("Noted.", tool_calls=[shell("echo listed", "call_ls")]), Reply("All listed."))
    run(server, "ask", "--session", "cli_admin", "--new", "list things")
    listing = run(server, "sessions")
    assert listing.returncode == 0 and listing.stdout.splitlines()[0].split() == ["ID", "MODIFIED", "MESSAGES",
                                                                                 "DESCRIPTION"]
    assert any(line.startswith("cli_admin ") and "list things" in line for line in listing.stdout.splitlines())
    assert "cli_admin" in [s["id"] for s in json.loads(run(server, "sessions", "--json").stdout)]
    shown = run(server, "show", "cli_admin").stdout
    assert "state        idle" in shown and "user: list things" in shown and "assistant: All listed." in shown
    assert '  [tool] developer__shell command="echo listed"' in shown
    assert json.loads(run(server, "--json", "show", "cli_admin", "--since", "3").stdout)["messages"][0]["role"] == \
        "assistant"
    assert run(server, "rm", "cli_admin").returncode == 0
    gone = run(server, "show", "cli_admin")
    assert gone.returncode == 1 and "Session cli_admin not found" in gone.stderr and "404" in gone.stderr


# --- durable runs and moving sessions ------------------------------------------------

def test_resume_continues_an_interrupted_run(server, fake):
    gate = Gate()
    fake.add(Reply("never delivered", gate=gate))
    GooseClient(server.url, API_KEY).start("hello", "cli_resume", background=True)
    gate.wait_reached()
    kill_worker_of(server, "cli_resume")
    gate.open()  # its answer goes to a dead worker
    fake.add(Reply("Picked up where it stopped.", chunk_size=5))
    done = run(server, "resume", "cli_resume")
    assert (done.returncode, done.stdout) == (0, "Picked up where it stopped.\n"), done.stderr
    assert done.stderr.splitlines()[-1] == "[session cli_resume]"
    again = run(server, "resume", "--no-stream", "cli_resume")
    assert again.returncode == 1 and "409 not_resumable" in again.stderr


def test_ask_if_busy_enqueue_waits_for_the_running_turn(server, fake):
    fake.add(Reply(tool_calls=[gate("cli_queue", "call_queue")]), Reply("First."),
             Reply("Queued, then answered.", chunk_size=5))
    client = GooseClient(server.url, API_KEY)
    running = client.start("hold on", "cli_queue", background=True)
    wait_at_gate(server, "cli_queue")
    busy = run(server, "ask", "--session", "cli_queue", "now?")
    assert busy.returncode == 1 and "409 session_busy" in busy.stderr
    process = subprocess.Popen([sys.executable, "-m", "goose_api", "ask", "--session", "cli_queue", "--if-busy",
                                "enqueue", "after you"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=cli_env(server.url, Path("/nonexistent")))
    try:
        assert process.stderr.readline() == "[queued: the turn runs when the session's current one ends]\n"
        open_gate(server, "cli_queue")
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert (process.returncode, out) == (0, "Queued, then answered.\n"), err
    assert client.wait("cli_queue", running.run_id).response == "First."
    assert [m["content"] for m in fake.last_body()["messages"] if m["role"] == "user"] == ["hold on", "after you"]
    assert run(server, "ask", "--if-busy", "enqueue", "a new session is never busy").returncode == 2


def test_fork_export_and_import(server, fake, tmp_path):
    fake.add(Reply("Listing.", tool_calls=[shell("echo moved", "call_mv")]), Reply("Moved along."))
    assert run(server, "ask", "--session", "cli_move", "--new", "move it").returncode == 0
    forked = run(server, "fork", "cli_move", "--at", "1", "--as", "cli_moved")
    assert (forked.returncode, forked.stdout) == (0, "Session cli_move forked as cli_moved (1 of 4 messages)\n")
    split = run(server, "fork", "cli_move", "--at", "2")
    assert split.returncode == 1 and "fork at 1 or 3" in split.stderr
    copy = json.loads(run(server, "--json", "fork", "cli_move").stdout)
    assert (copy["source_id"], copy["message_count"]) == ("cli_move", 4)

    jsonl = run(server, "export", "cli_move")
    assert jsonl.returncode == 0 and len(jsonl.stdout.splitlines()) == 5  # metadata and 4 messages
    assert "## Assistant" in run(server, "export", "cli_move", "--format", "markdown").stdout
    db = tmp_path / "move.db"
    exported = run(server, "export", "cli_move", "--format", "goose-sqlite", "-o", str(db))
    assert exported.stdout == f"Exported session cli_move to {db} (goose-sqlite)\n"
    assert db.read_bytes().startswith(b"SQLite format 3\0")

    (tmp_path / "move.jsonl").write_text(jsonl.stdout)
    imported = run(server, "import", str(tmp_path / "move.jsonl"), "--as", "cli_from_file")
    assert (imported.returncode, imported.stdout) == (0, "Imported 4 messages as session cli_from_file\n")
    from_db = json.loads(run(server, "import", str(db), "--json").stdout)  # the format from the name
    piped = run(server, "import", "-", "--as", "cli_from_stdin", stdin=jsonl.stdout)
    assert piped.returncode == 0, piped.stderr
    client = GooseClient(server.url, API_KEY)
    original = [(m["role"], m["content"]) for m in client.session("cli_move")["messages"]]
    for session_id in ("cli_from_file", from_db["session_id"], "cli_from_stdin"):
        assert [(m["role"], m["content"]) for m in client.session(session_id)["messages"]] == original

    missing = run(server, "import", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    broken = run(server, "import", "-", stdin="not a session\n")
    assert broken.returncode == 1 and "line 1 is not JSON" in broken.stderr


# --- extensions and provider ---------------------------------------------------------

def test_extensions_list_add_and_remove(server):
    listing = run(server, "extensions")
    assert listing.returncode == 0 and "developer" in listing.stdout and "running" in listing.stdout
    assert run(server, "extensions", "add", "builtin", "mcp_say").stdout == "Added extension mcp_say\n"
    details = json.loads(run(server, "extensions", "--json").stdout)
    assert {e["name"]: e["tools"] for e in details}["mcp_say"] == ["mcp_say__say"]
    assert run(server, "extensions", "remove", "mcp_say").returncode == 0
    assert "mcp_say" not in run(server, "extensions").stdout
    broken = run(server, "extensions", "add", "stdio", "--timeout", "5", "broken", "/bin/false", "--flag")
    assert broken.returncode == 1 and "extension_error" in broken.stderr
    missing = run(server, "extensions", "add", "stdio", "--timeout", "5", "broken", "/nonexistent/server")
    assert missing.returncode == 1 and "bad_request" in missing.stderr and "absolute path" in missing.stderr
    assert run(server, "extensions", "remove", "broken").returncode == 1  # it was not kept


def test_provider_show_and_set(server, fake):
    assert run(server, "provider").stdout == "openai gpt-4o\n"
    try:
        assert run(server, "provider", "set", "openai", "gpt-4o-mini").stdout == "openai gpt-4o-mini\n"
        fake.add(Reply("From the small model."))
        run(server, "ask", "hi")
        assert fake.last_body()["model"] == "gpt-4o-mini"
    finally:
        run(server, "provider", "set", "openai", "gpt-4o")
    failed = run(server, "provider", "set", "anthropic")
    assert failed.returncode == 1 and "ANTHROPIC_API_KEY" in failed.stderr


# --- exit codes ----------------------------------------------------------------------

def test_exit_codes_for_usage_connection_key_and_run_errors(server, fake, tmp_path):
    assert run(server, "ask").returncode == 2
    assert run(server, "ask", "--new", "--last", "x").returncode == 2
    unreachable = subprocess.run([sys.executable, "-m", "goose_api", "sessions"], capture_output=True, text=True,
                                 env=cli_env(f"http://127.0.0.1:{free_port()}", tmp_path), timeout=60)
    assert unreachable.returncode == 3 and "connection refused" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    bad_key = run(server, "sessions", key="wrong")
    assert bad_key.returncode == 1 and "401 unauthorized" in bad_key.stderr
    fake.add(Fail(401, code="auth"))
    failed = run(server, "ask", "--json", "hi")
    assert failed.returncode == 1 and "provider_error" in failed.stderr
    error = json.loads(failed.stdout.splitlines()[-1])
    assert error["type"] == "error" and error["data"]["kind"] == "authentication"


def test_ctrl_c_cancels_the_running_turn(server, fake):
    fake.add(Reply(tool_calls=[shell("sleep 30", "call_nap")]))
    process = subprocess.Popen([sys.executable, "-m", "goose_api", "ask", "--session", "cli_nap", "--new", "nap"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=cli_env(server.url, Path("/nonexistent")))
    try:
        assert process.stderr.readline().startswith("[tool] developer__shell")  # the tool runs now
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted; Cancelled the tool call developer__shell" in err and "Traceback" not in err
    assert GooseClient(server.url, API_KEY).session("cli_nap")["state"] == "idle"


# --- approvals -----------------------------------------------------------------------

def test_approval_prompts_yes_no_and_end_of_input(approve_server, fake):
    fake.add(Reply(tool_calls=[shell("echo approved-run", "call_y")]), Reply("It ran."),
             Reply(tool_calls=[shell("rm -rf /tmp/nothing", "call_n")]), Reply("Declined, fine."),
             Reply(tool_calls=[shell("echo unanswered", "call_eof")]), Reply("Nobody answered."))
    yes = run(approve_server, "ask", "--session", "cli_ok", "--new", "run it", stdin="y\n")
    assert yes.returncode == 0 and yes.stdout == "It ran.\n"
    assert 'Allow developer__shell command="echo approved-run"? [y]es / [N]o / [a]lways: ' in yes.stderr
    assert "[ok] " in yes.stderr and "approved-run" in yes.stderr.split("[ok] ", 1)[1]
    no = run(approve_server, "ask", "--session", "cli_ok", "delete it", stdin="maybe\nn\n")
    assert no.returncode == 0 and no.stdout == "Declined, fine.\n" and "Please answer y, n or a." in no.stderr
    assert DECLINED_TEXT in json.dumps(fake.requests[3].body["messages"])
    unanswered = run(approve_server, "ask", "--session", "cli_ok", "and this?")
    assert "(no answer: denied)" in unanswered.stderr and unanswered.stdout == "Nobody answered.\n"


def view(path: str, call_id: str) -> ToolCall:
    """The text editor, not the shell: "always" is remembered per tool, and the shell must keep asking."""
    return ToolCall("developer__text_editor", {"command": "view", "path": path}, id=call_id)


def test_approval_without_streaming_and_always(approve_server, fake):
    fake.add(Reply(tool_calls=[view("/nonexistent/a.txt", "call_a")]), Reply("Looked, and you trust it now."),
             Reply(tool_calls=[view("/nonexistent/b.txt", "call_b")]), Reply("Looked again without asking."))
    always = run(approve_server, "ask", "--no-stream", "--session", "cli_always", "--new", "look", stdin="a\n")
    assert always.returncode == 0 and always.stdout == "Looked, and you trust it now.\n"
    assert 'Allow developer__text_editor command="view" path="/nonexistent/a.txt"?' in always.stderr
    again = run(approve_server, "ask", "--session", "cli_always", "look again")
    assert again.stdout == "Looked again without asking.\n" and "Allow" not in again.stderr
    assert "[tool] developer__text_editor" in again.stderr


# --- serve ---------------------------------------------------------------------------

@pytest.mark.live
def test_serve_runs_the_server_from_any_directory(fake_openai, dirs, tmp_path):
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **live_env(fake_openai, dirs)}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "goose_api", "serve", "--bind", f"127.0.0.1:{port}"],
                                   cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or process.poll() is not None, timeout=30, what="goose-api serve")
        assert process.poll() is None, log_path.read_text()
        fake_openai.add(Reply("Served."))
        done = subprocess.run([sys.executable, "-m", "goose_api", "ask", "hi"], capture_output=True, text=True,
                              env=cli_env(url, dirs["home"]), timeout=60)
        assert done.stdout == "Served.\n", done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
    assert "Booting worker" in log_path.read_text()


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or booting slowly under load
        return False
