"""The developer extension, confined: what a tool call (the model, or whoever steers it) can reach.

The shell runs in bubblewrap (installed by `make`; this machine can run it, and the suite says so
rather than skip): the data dir (keys), the sessions dir (everyone's sessions), config files,
other allowed roots and the server's processes are out of sight, and only the working dir is
writable. The text editor works inside the working dir only, whatever symlinks say.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from goose_api.errors import ConfigurationError, ToolCallFailed
from goose_api.mcp.registry import ExtensionRegistry
from goose_api.mcp.sandbox import developer_sandbox, probe
from tests.support.mcp_fixtures import make_settings, processes_named, registry_for, wait_until

pytestmark = pytest.mark.timeout(120)
API_KEY = "sandbox-test-key-8d1f"
PROVIDER_KEY = "sk-provider-secret-5a2c"


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sandbox")
    paths = {name: root / name for name in ("data", "sessions", "roots", "elsewhere")}
    for path in paths.values():
        path.mkdir()
    (paths["data"] / "api_key").write_text(API_KEY + "\n")
    (paths["sessions"] / "bobs.jsonl").write_text('{"description": "bob\'s private plans"}\n')
    paths["work"] = paths["roots"] / "alice"
    paths["bob"] = paths["roots"] / "bob"
    for name in ("work", "bob"):
        paths[name].mkdir()
    (paths["bob"] / "diary.txt").write_text("bob's diary\n")
    paths["config"] = root / "config.yaml"
    paths["config"].write_text(f"api_key: {API_KEY}\n")
    paths["dotenv"] = root / ".env"
    paths["dotenv"].write_text(f"OPENAI_API_KEY={PROVIDER_KEY}\n")
    return paths


def developer_registry(place: dict[str, Path], mode: str) -> ExtensionRegistry:
    settings = make_settings(place["data"], sessions_dir=str(place["sessions"]), extensions={},
                             developer_sandbox=mode, allowed_roots=(str(place["roots"]),),
                             files=(str(place["config"]), str(place["dotenv"])))
    return registry_for(settings)


@pytest.fixture(scope="module")
def sandboxed(place) -> ExtensionRegistry:
    assert probe(shutil.which("bwrap")) is None, "bubblewrap must work here (make installs it)"
    registry = developer_registry(place, "bwrap")
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def unsandboxed(place) -> ExtensionRegistry:
    registry = developer_registry(place, "off")
    yield registry
    registry.close()


def shell(registry: ExtensionRegistry, command: str, work: Path) -> str:
    """The command's output, whether it exited 0 or not (a failed read is what these tests expect)."""
    try:
        return registry.call_tool("developer__shell", {"command": command}, working_dir=str(work))[0]["text"]
    except ToolCallFailed as exc:
        return exc.message


def edit(registry: ExtensionRegistry, work: Path, command: str, path: Path | str, **args) -> str:
    return registry.call_tool("developer__text_editor", {"command": command, "path": str(path), **args},
                              working_dir=str(work))[0]["text"]


# --- the shell ----------------------------------------------------------------------

def test_a_command_cannot_read_the_api_key(sandboxed, place):
    out = shell(sandboxed, f"cat {place['data']}/api_key; ls -A {place['data']}; echo listed", place["work"])
    assert API_KEY not in out and "api_key" not in out.split("listed")[0].split("--- stderr")[0].split("\n", 2)[-1]
    assert "No such file" in out


def test_a_command_cannot_read_another_session(sandboxed, place):
    out = shell(sandboxed, f"cat {place['sessions']}/bobs.jsonl; cat {place['bob']}/diary.txt; ls {place['roots']}",
                place["work"])
    assert "private plans" not in out and "bob's diary" not in out and "No such file" in out


def test_a_command_cannot_read_the_config_or_env_files(sandboxed, place):
    out = shell(sandboxed, f"cat {place['config']}; cat {place['dotenv']}", place["work"])
    assert API_KEY not in out and PROVIDER_KEY not in out


def test_a_command_cannot_see_the_servers_processes_or_environment(sandboxed, place, monkeypatch):
    monkeypatch.setenv("GOOSE_TEST_PROVIDER_KEY", PROVIDER_KEY)  # in this (the server's) process only
    out = shell(sandboxed, "ls /proc | grep -c '^[0-9]'; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; "
                           "echo; done; cat /proc/[0-9]*/environ | tr '\\0' '\\n'; env", place["work"])
    assert int(out.splitlines()[2]) <= 5, out  # bwrap's init, bash, and what this command ran
    assert " -m pytest" not in out and "extensions.developer" not in out, "the server's processes are out of sight"
    assert PROVIDER_KEY not in out and "GOOSE_API" not in out, "and so is their environment"


def test_only_the_working_dir_is_writable(sandboxed, place):
    targets = [place["elsewhere"] / "planted", place["data"] / "planted", place["sessions"] / "planted.jsonl",
               place["bob"] / "planted", Path(place["roots"]) / "planted", Path(f"/usr/local/planted-{uuid.uuid4()}"),
               Path(f"/tmp/planted-{uuid.uuid4()}")]  # /tmp is the sandbox's own, thrown away with the command
    command = "; ".join(f"echo x > {target}" for target in targets) + "; echo mine > mine.txt"
    try:
        shell(sandboxed, command, place["work"])
        assert (place["work"] / "mine.txt").read_text() == "mine\n"
        for target in targets:
            assert not target.exists(), target
        assert "planted" not in shell(sandboxed, "ls /tmp", place["work"])
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


def test_private_paths_inside_the_working_dir_stay_hidden(place, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "api_key").write_text(API_KEY)
    registry = registry_for(make_settings(data, extensions={}, developer_sandbox="bwrap"))
    try:
        out = shell(registry, "cat data/api_key; echo x > data/planted; ls data", tmp_path)
        assert API_KEY not in out
        assert not (data / "planted").exists()
    finally:
        registry.close()


@pytest.mark.parametrize("fixture", ["sandboxed", "unsandboxed"])
def test_background_children_end_with_the_command(request, place, fixture):
    registry = request.getfixturevalue(fixture)
    marker = f"goose-bg-{fixture}-{uuid.uuid4()}"
    out = shell(registry, f"(exec -a {marker} sleep 300) > /dev/null 2>&1 & echo started", place["work"])
    assert "started" in out
    wait_until(lambda: not processes_named(marker), 10, "the background sleep to end")


@pytest.mark.parametrize("mode", ["bwrap", "off"])
def test_what_a_command_started_dies_with_the_extension(place, mode):
    registry = developer_registry(place, mode)
    marker = f"goose-die-{mode}-{uuid.uuid4()}"
    calling = threading.Thread(target=shell, args=(registry, f"(exec -a {marker} sleep 300) & wait", place["work"]),
                               daemon=True)
    calling.start()
    try:
        wait_until(lambda: processes_named(marker), 20, "the command to start")
    finally:
        registry.close()
    wait_until(lambda: not processes_named(marker), 20, "the command to die with the extension")


def test_unsandboxed_commands_are_not_confined(unsandboxed, place):
    """Mode off is what it says: the shell reads what the server's user can (the warning tells the admin)."""
    assert API_KEY in shell(unsandboxed, f"cat {place['data']}/api_key", place["work"])


# --- the text editor -------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["sandboxed", "unsandboxed"])
def test_the_editor_reads_nothing_outside_the_working_dir(request, place, fixture):
    registry = request.getfixturevalue(fixture)
    work = place["work"]
    (work / "key-link").unlink(missing_ok=True)
    (work / "key-link").symlink_to(place["data"] / "api_key")
    for path in (place["data"] / "api_key", work / ".." / "bob" / "diary.txt", work / "key-link", place["config"],
                 Path("/etc/passwd")):
        with pytest.raises(ToolCallFailed, match="outside the working directory|private files") as info:
            edit(registry, work, "view", path)
        assert API_KEY not in info.value.message and "bob's diary" not in info.value.message


@pytest.mark.parametrize("fixture", ["sandboxed", "unsandboxed"])
def test_the_editor_writes_nothing_outside_the_working_dir(request, place, fixture, tmp_path):
    registry = request.getfixturevalue(fixture)
    work = place["work"]
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "dir-link").unlink(missing_ok=True)
    (work / "dir-link").symlink_to(outside)
    (work / "file-link").unlink(missing_ok=True)
    (work / "file-link").symlink_to(outside / "target.txt")
    for path in (outside / "new.txt", work / ".." / "bob" / "new.txt", work / "dir-link" / "new.txt",
                 work / "dir-link" / "deeper" / "new.txt", work / "file-link", place["sessions"] / "new.jsonl"):
        with pytest.raises(ToolCallFailed):
            edit(registry, work, "write", path, file_text="planted")
    assert list(outside.iterdir()) == [] and not (place["bob"] / "new.txt").exists()
    assert not (place["sessions"] / "new.jsonl").exists()
    assert edit(registry, work, "write", work / "sub" / "ok.txt", file_text="fine\n").startswith("Wrote 1 lines")
    assert (work / "sub" / "ok.txt").read_text() == "fine\n"


def test_the_editor_does_not_list_or_open_private_paths_inside_the_working_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "api_key").write_text(API_KEY)
    registry = registry_for(make_settings(data, extensions={}, developer_sandbox="off"))
    try:
        assert "data" not in edit(registry, tmp_path, "view", tmp_path).split("\n", 1)[1].split()
        with pytest.raises(ToolCallFailed, match="private files"):
            edit(registry, tmp_path, "view", data / "api_key")
        with pytest.raises(ToolCallFailed, match="private files"):
            edit(registry, tmp_path, "write", data / "planted", file_text="x")
        assert "planted" not in os.listdir(data)
    finally:
        registry.close()


# --- choosing the mode -------------------------------------------------------------------

def test_auto_without_bwrap_warns_at_start_and_runs_unsandboxed(tmp_path, caplog):
    settings = make_settings(tmp_path / "data", developer_sandbox="auto", env={"PATH": str(tmp_path)})
    with caplog.at_level(logging.WARNING, logger="goose_api.mcp.sandbox"):
        sandbox = developer_sandbox(settings)
    assert sandbox["mode"] == "off"
    assert "developer shell NOT sandboxed: bwrap is not installed" in caplog.text


def test_auto_uses_bwrap_when_it_works(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="goose_api.mcp.sandbox"):
        sandbox = developer_sandbox(make_settings(tmp_path / "data", developer_sandbox="auto"))
    assert sandbox["mode"] == "bwrap" and os.path.realpath(sandbox["bwrap"]) == os.path.realpath(shutil.which("bwrap"))
    assert caplog.text == ""


def test_bwrap_required_but_broken_refuses_to_start(tmp_path):
    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(ConfigurationError, match="developer_sandbox is bwrap, but .*cannot create its namespaces"):
        registry_for(make_settings(tmp_path / "data", developer_sandbox="bwrap", env={"PATH": str(tmp_path)}))


def test_off_says_so_at_start(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="goose_api.mcp.sandbox"):
        assert developer_sandbox(make_settings(tmp_path / "data", developer_sandbox="off"))["mode"] == "off"
    assert "developer_sandbox is off" in caplog.text
