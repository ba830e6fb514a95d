"""ExtensionRegistry against real stdio servers: lifecycle, sharing, policy, faults, no orphans."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from goose_api.errors import BadRequest, ExtensionError, Forbidden, NotFound, ToolCallFailed
from goose_api.storage.process import pid_alive
from tests.support.mcp_fixtures import (  # noqa: F401
    MISBEHAVING,
    NO_DEVELOPER,
    ROOT,
    assert_all_gone,
    free_port,
    make_registry,
    misbehaving,
    pids_of,
    python_server,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


@pytest.mark.slow
def test_add_lists_tools_and_calls_them(make_registry):
    registry = make_registry()
    assert registry.names() == []
    registry.add(misbehaving("Fake Server!"))
    assert registry.names() == ["Fake Server!"]
    names = [tool.name for tool in registry.tools()]
    assert names == ["fake_server___echo", "fake_server___crash", "fake_server___hang",
                     "fake_server___wait", "fake_server___garbage", "fake_server___report", "fake_server___fail"]
    assert registry.call_tool("fake_server___echo", {"text": "hi"}) == [{"type": "text", "text": "hi"}]
    assert registry.instructions() == {"fake_server_": "A test server that fails on purpose."}
    [detail] = registry.details()
    assert detail["status"] == "running" and detail["last_error"] is None and detail["type"] == "stdio"
    assert detail["tools"] == names


@pytest.mark.slow
def test_remove_stops_the_process_and_unknown_name_is_not_found(make_registry):
    registry = make_registry()
    registry.add(misbehaving("a"))
    registry.add(misbehaving("b"))
    pids = pids_of(registry)
    assert set(pids) == {"a", "b"} and all(pid_alive(pid) for pid in pids.values())
    registry.remove("a")
    assert registry.names() == ["b"]
    assert_all_gone([pids["a"]])
    assert pid_alive(pids["b"])
    with pytest.raises(NotFound, match="no extension named 'a'"):
        registry.remove("a")
    with pytest.raises(ToolCallFailed, match="Unknown tool"):
        registry.call_tool("a__echo", {"text": "x"})


@pytest.mark.slow
def test_close_leaves_no_child_process(make_registry):
    registry = make_registry(extensions={})  # developer on, as by default
    registry.add(misbehaving("a"))
    registry.add(python_server("time", "-m", "mcp_server_time", "--local-timezone", "UTC"))
    pids = pids_of(registry)
    assert set(pids) == {"developer", "a", "time"}
    with pytest.raises(ToolCallFailed, match="timed out"):
        registry.call_tool("a__hang", {}, timeout=0.5)  # a call still running in the server
    registry.close()
    assert_all_gone(pids.values(), timeout=1)


@pytest.mark.slow
def test_adding_an_existing_name_replaces_it(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    old_pid = pids_of(registry)["fake"]
    registry.add(python_server("fake", "-m", "mcp_server_time", "--local-timezone", "UTC"))
    assert [t.name for t in registry.tools()] == ["fake__get_current_time", "fake__convert_time"]
    assert_all_gone([old_pid])


@pytest.mark.slow
def test_failed_add_keeps_nothing_and_says_why_with_stderr(make_registry, tmp_path):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    with pytest.raises(ExtensionError) as info:
        registry.add(misbehaving("fake", "fail-start"))
    assert info.value.status == 502
    assert "FAKE_CONFIG is not set" in info.value.message  # the tail of the server's stderr
    assert registry.call_tool("fake__echo", {"text": "old one"}) == [{"type": "text", "text": "old one"}]
    with pytest.raises(BadRequest, match="neither an executable on the server's PATH nor the absolute path"):
        registry.add({"type": "stdio", "name": "ghost", "cmd": "/nonexistent/server"})
    assert registry.names() == ["fake"]
    stored = json.loads((tmp_path / "data" / "extensions.json").read_text())["extensions"]
    assert list(stored) == ["fake"] and stored["fake"]["args"][-1] == "ok"


@pytest.mark.slow
def test_a_server_that_never_answers_costs_its_timeout(make_registry):
    registry = make_registry()
    with pytest.raises(ExtensionError, match="no answer within 1 s"):  # its own timeout, not a longer one
        registry.add(misbehaving("slow", "hang-start", timeout=1))
    assert registry.names() == []


@pytest.mark.slow
def test_garbage_on_stdout_is_an_error_not_a_hang(make_registry):
    registry = make_registry()
    # The errors name the garbage: had they waited for the 60 s timeout, they would say so instead.
    with pytest.raises(ExtensionError, match="(?s)not an MCP message.*forgot the protocol"):
        registry.add(misbehaving("noisy", "garbage", timeout=60))
    registry.add(misbehaving("fake", timeout=60))
    with pytest.raises(ToolCallFailed, match="(?s)not an MCP message.*this is not json"):
        registry.call_tool("fake__garbage", {})
    assert registry.details()[0]["status"] == "failed"


@pytest.mark.slow
def test_hanging_tool_times_out_and_the_server_stays_usable(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake", timeout=30))
    with pytest.raises(ToolCallFailed, match="timed out after 0.5 s"):  # the call's timeout, not the server's 30
        registry.call_tool("fake__hang", {}, timeout=0.5)
    assert registry.call_tool("fake__echo", {"text": "ok"}) == [{"type": "text", "text": "ok"}]


@pytest.mark.slow
def test_config_timeout_applies_to_calls(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake", timeout=4))
    with pytest.raises(ToolCallFailed, match="timed out after 4 s"):
        registry.call_tool("fake__hang", {})


@pytest.mark.slow
def test_crash_marks_failed_and_the_next_call_restarts_once(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    first_pid = pids_of(registry)["fake"]
    with pytest.raises(ToolCallFailed, match="crashed") as info:
        registry.call_tool("fake__crash", {})
    assert "crashing on purpose" in info.value.message
    [detail] = registry.details()
    assert detail["status"] == "failed" and detail["last_error"]
    assert "fake__echo" in [t.name for t in registry.tools()]  # still offered, so it can come back
    assert registry.call_tool("fake__echo", {"text": "back"}) == [{"type": "text", "text": "back"}]
    assert registry.details()[0]["status"] == "running"
    assert pids_of(registry)["fake"] != first_pid


def test_restart_failure_is_reported(make_registry, tmp_path):
    script = tmp_path / "once.py"
    marker = tmp_path / "started-once"
    script.write_text(f"import os, runpy, sys\nif os.path.exists({str(marker)!r}):\n"
                      f"    sys.stderr.write('second start refused\\n'); sys.exit(4)\n"
                      f"open({str(marker)!r}, 'w').close()\nsys.argv = [{MISBEHAVING!r}]\n"
                      f"runpy.run_path({MISBEHAVING!r}, run_name='__main__')\n")
    registry = make_registry()
    registry.add(python_server("once", str(script)))
    with pytest.raises(ToolCallFailed, match="crashed"):
        registry.call_tool("once__crash", {})
    with pytest.raises(ToolCallFailed, match="(?s)could not be restarted.*second start refused"):
        registry.call_tool("once__echo", {"text": "x"})
    assert registry.details()[0]["status"] == "failed"


def test_error_result_and_unknown_tool_become_tool_call_failed(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    with pytest.raises(ToolCallFailed, match="disk is full"):
        registry.call_tool("fake__fail", {"reason": "disk is full"})
    with pytest.raises(ToolCallFailed, match="has no tool 'nope'"):
        registry.call_tool("fake__nope", {})
    with pytest.raises(ToolCallFailed, match="<extension>__<tool>"):
        registry.call_tool("echo", {})


@pytest.mark.slow
def test_cancel_event_abandons_the_call(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    cancel, running = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            registry.call_tool("fake__wait", {}, timeout=30, cancel_event=cancel,
                               on_notification=lambda data: running.set())
        except ToolCallFailed as exc:
            outcome.append(exc)
    caller = threading.Thread(target=call)
    caller.start()
    assert running.wait(30), "the call to start"
    cancel.set()
    caller.join(30)
    assert [str(e) for e in outcome] == ["cancelled"]  # not the 30 s timeout
    assert registry.call_tool("fake__echo", {"text": "after"}) == [{"type": "text", "text": "after"}]


def test_stdio_command_outside_allow_list_is_forbidden(make_registry):
    registry = make_registry(extension_commands=("node",))
    with pytest.raises(Forbidden) as info:
        registry.add(misbehaving("fake"))
    assert info.value.status == 403 and "extension_commands" in info.value.message
    allowed = make_registry(extension_commands=(sys.executable,))
    allowed.add(misbehaving("fake"))
    assert allowed.names() == ["fake"]


def test_missing_env_keys_are_a_bad_request_naming_them(make_registry):
    registry = make_registry(env={"PRESENT": "1"})
    with pytest.raises(BadRequest, match="MISSING_ONE, MISSING_TWO"):
        registry.add(misbehaving("fake", env_keys=["PRESENT", "MISSING_ONE", "MISSING_TWO"]))
    assert registry.names() == []


def test_envs_and_env_keys_reach_the_server_but_never_details(make_registry, tmp_path):
    script = tmp_path / "envserver.py"
    script.write_text("import os\nfrom mcp.server.mcpserver import MCPServer\napp = MCPServer('env')\n"
                      "@app.tool(structured_output=False)\ndef env(name: str) -> str:\n"
                      "    return os.environ.get(name, 'unset')\napp.run('stdio')\n")
    registry = make_registry(env={"API_TOKEN": "s3cret-from-env"})
    registry.add(python_server("env", str(script), envs={"INLINE": "s3cret-inline"}, env_keys=["API_TOKEN"]))
    assert registry.call_tool("env__env", {"name": "API_TOKEN"})[0]["text"] == "s3cret-from-env"
    assert registry.call_tool("env__env", {"name": "INLINE"})[0]["text"] == "s3cret-inline"
    assert registry.call_tool("env__env", {"name": "GOOSE_API_KEY"})[0]["text"] == "unset"
    details = json.dumps(registry.details())
    assert "s3cret" not in details and "INLINE" not in details
    assert registry.details()[0]["env_keys"] == ["API_TOKEN"]


@pytest.mark.slow
def test_extensions_file_is_shared_by_workers(make_registry, tmp_path):
    worker_a, worker_b = make_registry(), make_registry()
    assert worker_a.names() == worker_b.names() == []
    worker_a.add(misbehaving("fake"))
    assert worker_b.names() == ["fake"]  # b notices the file changed and connects itself
    assert worker_b.call_tool("fake__echo", {"text": "from b"}) == [{"type": "text", "text": "from b"}]
    pid_a, pid_b = pids_of(worker_a)["fake"], pids_of(worker_b)["fake"]
    assert pid_a != pid_b
    worker_b.remove("fake")
    assert worker_a.names() == []
    assert_all_gone([pid_a, pid_b])
    restarted = make_registry()  # a service restart: the state survives
    worker_a.add(misbehaving("again"))
    assert restarted.names() == ["again"]
    assert (tmp_path / "data" / "extensions.json").stat().st_mode & 0o777 == 0o600


def test_configured_extensions_load_lazily_on_first_use(make_registry, tmp_path):
    registry = make_registry(extensions={
        "developer": {"enabled": True, "type": "builtin", "name": "developer", "bundled": True,
                      "display_name": "Developer", "timeout": 300},
        "clock": {"enabled": True, "type": "stdio", "name": "clock", "cmd": sys.executable,
                  "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"], "available_tools": []},
        "off": {"enabled": False, "type": "stdio", "name": "off", "cmd": "false"},
        "weird": {"enabled": True, "type": "frontend", "name": "weird"},
    })
    assert not (tmp_path / "data" / "extensions.json").exists()  # nothing happens before first use
    assert registry.names() == ["clock", "developer"]
    assert {d["status"] for d in registry.details()} == {"running"}


@pytest.mark.slow
def test_a_configured_extension_that_fails_is_listed_as_failed(make_registry):
    broken = {"enabled": True, "type": "stdio", "name": "broken", "cmd": sys.executable,
              "args": [MISBEHAVING, "fail-start"]}
    registry = make_registry(extensions={**NO_DEVELOPER, "broken": broken})
    [detail] = registry.details()
    assert detail["status"] == "failed" and "FAKE_CONFIG is not set" in detail["last_error"]
    assert registry.tools() == []


def _child_uses_registry(registry, results) -> None:
    try:
        content = registry.call_tool("fake__echo", {"text": "child"})
        pid = pids_of(registry)["fake"]
        registry.close()
        results.put((content, pid, pid_alive(pid)))
    except BaseException as exc:
        results.put(repr(exc))


@pytest.mark.slow
def test_forked_worker_makes_its_own_loop_and_servers(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    parent_pid = pids_of(registry)["fake"]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_uses_registry, args=(registry, results))
    child.start()
    outcome = results.get(timeout=60)
    assert isinstance(outcome, tuple), outcome
    content, child_server, alive_after_close = outcome
    child.join(30)
    assert child.exitcode == 0
    assert content == [{"type": "text", "text": "child"}]
    assert child_server != parent_pid and not alive_after_close
    assert pid_alive(parent_pid)
    assert registry.call_tool("fake__echo", {"text": "parent"}) == [{"type": "text", "text": "parent"}]


def test_removed_builtin_name_and_unknown_builtin(make_registry):
    registry = make_registry()
    with pytest.raises(BadRequest, match="developer, mcp_say, memory"):
        registry.add({"type": "builtin", "name": "computercontroller"})


def test_working_dir_reaches_the_server_in_meta(make_registry, tmp_path: Path):
    registry = make_registry(extensions={})
    [result] = registry.call_tool("developer__shell", {"command": "pwd"}, working_dir=str(tmp_path))
    assert result["text"].splitlines()[1:] == ["--- stdout ---", str(tmp_path)]


@pytest.mark.slow
def test_concurrent_calls_from_many_threads(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    results: dict[int, object] = {}

    def work(n: int) -> None:
        try:
            if n % 4 == 0:
                registry.call_tool("fake__hang", {}, timeout=0.5)
            results[n] = registry.call_tool("fake__echo", {"text": str(n)})
        except ToolCallFailed as exc:
            results[n] = exc.message

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {n: r for n, r in results.items() if n % 4} == {
        n: [{"type": "text", "text": str(n)}] for n in range(12) if n % 4}
    assert all("timed out" in str(results[n]) for n in range(0, 12, 4))


@pytest.mark.slow
def test_servers_are_stopped_at_exit_even_without_close(tmp_path):
    script = tmp_path / "forgetful.py"
    script.write_text(
        "import sys\nsys.path.insert(0, sys.argv[1])\n"
        "from tests.support.mcp_fixtures import make_settings, misbehaving, pids_of, registry_for\n"
        "registry = registry_for(make_settings(__import__('pathlib').Path(sys.argv[2])))\n"
        "registry.add(misbehaving('fake'))\nprint(pids_of(registry)['fake'], flush=True)\n")
    done = subprocess.run([sys.executable, str(script), str(ROOT), str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_all_gone([int(done.stdout.strip())], timeout=5)


def test_remote_failure_messages_hide_url_credentials(make_registry):
    registry = make_registry(extension_hosts=("127.0.0.1",))
    port = free_port()  # nothing listens there
    with pytest.raises(ExtensionError) as info:
        registry.add({"type": "streamable_http", "name": "remote", "timeout": 5,
                      "uri": f"http://user:pa55word@127.0.0.1:{port}/mcp?token=s3cret"})
    assert f"http://127.0.0.1:{port}/mcp" in info.value.message
    assert "pa55word" not in info.value.message and "s3cret" not in info.value.message


@pytest.mark.slow
def test_a_hand_edit_of_the_extensions_file_is_noticed_within_a_second_or_so(make_registry, tmp_path):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    assert registry.names() == ["fake"]
    path = tmp_path / "data" / "extensions.json"
    document = json.loads(path.read_text())
    document["extensions"] = {}
    path.write_text(json.dumps(document))  # not through the store: no change count, only the file
    wait_until(lambda: registry.names() == [], 5, "the registry to notice the edited file")
