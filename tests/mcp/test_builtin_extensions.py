"""The builtin extensions, each run as a real MCP server subprocess through the registry."""

from __future__ import annotations

import stat
import sys
import uuid
from pathlib import Path

import pytest

from goose_api.errors import ToolCallFailed
from goose_api.mcp.registry import ExtensionRegistry
from tests.support.mcp_fixtures import (  # noqa: F401
    ROOT,
    make_registry,
    make_settings,
    processes_named,
    registry_for,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def builtins(tmp_path_factory) -> ExtensionRegistry:
    registry = registry_for(make_settings(tmp_path_factory.mktemp("data"), extensions={}))
    registry.add({"type": "builtin", "name": "memory"})
    registry.add({"type": "builtin", "name": "mcp_say", "display_name": "Say"})
    yield registry
    registry.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


def text_of(result: list[dict]) -> str:
    assert [item["type"] for item in result] == ["text"]
    return result[0]["text"]


def shell(registry: ExtensionRegistry, command: str, work: Path, **args) -> str:
    return text_of(registry.call_tool("developer__shell", {"command": command, **args}, working_dir=str(work)))


def edit(registry: ExtensionRegistry, work: Path, command: str, path: Path | str, **args) -> str:
    return text_of(registry.call_tool("developer__text_editor", {"command": command, "path": str(path), **args},
                                      working_dir=str(work)))


# --- developer: shell -----------------------------------------------------------

@pytest.mark.slow
def test_builtins_are_listed_with_honest_annotations(builtins):
    tools = {tool.name: tool for tool in builtins.tools()}
    assert set(tools) == {"developer__shell", "developer__text_editor", "mcp_say__say",
                          "memory__remember_memory", "memory__retrieve_memories",
                          "memory__remove_memory_category", "memory__remove_specific_memory"}
    assert tools["developer__shell"].annotations["readOnlyHint"] is False
    assert tools["developer__text_editor"].annotations["readOnlyHint"] is False
    assert tools["memory__retrieve_memories"].annotations["readOnlyHint"] is True
    assert tools["memory__remove_memory_category"].annotations["destructiveHint"] is True
    assert tools["developer__text_editor"].input_schema["properties"]["command"]["enum"] == [
        "view", "write", "str_replace", "insert", "undo_edit"]
    assert set(builtins.instructions()) == {"developer", "memory", "mcp_say"}
    assert "text_editor" in builtins.instructions()["developer"]


@pytest.mark.slow
def test_shell_runs_in_the_working_dir_and_returns_both_streams(builtins, work):
    out = shell(builtins, "pwd; echo to-out; echo to-err >&2", work)
    assert out.splitlines() == ["Exit code: 0", "--- stdout ---", str(work), "to-out", "--- stderr ---", "to-err"]


def test_shell_nonzero_exit_is_an_error_with_the_output(builtins, work):
    with pytest.raises(ToolCallFailed) as info:
        shell(builtins, "echo partial; echo broken >&2; exit 3", work)
    assert "Exit code: 3" in info.value.message
    assert "partial" in info.value.message and "broken" in info.value.message


def test_shell_timeout_kills_the_command_and_its_children(builtins, work):
    marker = f"goose-timeout-{uuid.uuid4()}"
    with pytest.raises(ToolCallFailed, match="timed out after 1 s and was killed"):
        shell(builtins, f"(exec -a {marker} sleep 60) & echo started; wait", work, timeout=1)
    wait_until(lambda: not processes_named(marker), 5, "the background sleep to be killed")


def test_shell_output_is_capped_with_a_note(builtins, work):
    out = shell(builtins, "head -c 200000 /dev/zero | tr '\\0' x; echo END", work)
    assert "bytes omitted" in out and "the output was 200004 bytes" in out
    assert out.rstrip().endswith("END") and len(out) < 45_000


def test_the_tools_need_the_sessions_working_dir(builtins):
    for tool, args in (("shell", {"command": "pwd"}), ("text_editor", {"command": "view", "path": str(ROOT)})):
        with pytest.raises(ToolCallFailed, match="no working directory"):
            builtins.call_tool(f"developer__{tool}", args)


def test_shell_missing_working_dir_is_an_error(builtins, work):
    with pytest.raises(ToolCallFailed, match="does not exist"):
        shell(builtins, "true", work / "nowhere")


# --- developer: text_editor -----------------------------------------------------

def test_write_view_and_view_range(builtins, work):
    path = work / "new" / "dir" / "notes.txt"
    assert edit(builtins, work, "write", path, file_text="one\ntwo\nthree\n") == f"Wrote 3 lines to {path}"
    assert path.read_text() == "one\ntwo\nthree\n"
    assert edit(builtins, work, "view", path).splitlines() == [f"{path} (3 lines)", "     1\tone", "     2\ttwo",
                                                         "     3\tthree"]
    assert edit(builtins, work, "view", path, view_range=[2, -1]).splitlines()[1:] == ["     2\ttwo", "     3\tthree"]
    assert edit(builtins, work, "view", work / "new" / "dir").splitlines() == [f"{work}/new/dir/ (1 entries)",
                                                                         "notes.txt"]
    with pytest.raises(ToolCallFailed, match="outside the file"):
        edit(builtins, work, "view", path, view_range=[2, 9])


def test_str_replace_unique_missing_and_ambiguous(builtins, work):
    path = work / "code.py"
    path.write_text("a = 1\nb = 2\nb = 2\n")
    with pytest.raises(ToolCallFailed, match="appears 2 times"):
        edit(builtins, work, "str_replace", path, old_str="b = 2", new_str="b = 3")
    with pytest.raises(ToolCallFailed, match="was not found"):
        edit(builtins, work, "str_replace", path, old_str="c = 1", new_str="c = 2")
    out = edit(builtins, work, "str_replace", path, old_str="a = 1", new_str="a = 10")
    assert out.startswith(f"Edited {path}:") and "a = 10" in out
    assert path.read_text() == "a = 10\nb = 2\nb = 2\n"


def test_insert_and_undo_edit(builtins, work):
    path = work / "list.txt"
    edit(builtins, work, "write", path, file_text="first\nlast")
    edit(builtins, work, "insert", path, insert_line=1, new_str="middle")
    assert path.read_text() == "first\nmiddle\nlast"
    edit(builtins, work, "insert", path, insert_line=0, new_str="top\n")
    edit(builtins, work, "insert", path, insert_line=4, new_str="bottom")
    assert path.read_text() == "top\nfirst\nmiddle\nlast\nbottom\n"
    with pytest.raises(ToolCallFailed, match="between 0 and 5"):
        edit(builtins, work, "insert", path, insert_line=9, new_str="x")
    assert edit(builtins, work, "undo_edit", path) == f"Undid the last edit of {path}"
    assert path.read_text() == "top\nfirst\nmiddle\nlast"
    edit(builtins, work, "undo_edit", path)
    edit(builtins, work, "undo_edit", path)
    assert path.read_text() == "first\nlast"
    assert "removed" in edit(builtins, work, "undo_edit", path)  # undoing the write that created it
    assert not path.exists()
    with pytest.raises(ToolCallFailed, match="no edit of"):
        edit(builtins, work, "undo_edit", path)


def test_editor_errors_are_clear(builtins, work):
    with pytest.raises(ToolCallFailed, match="must be absolute"):
        edit(builtins, work, "view", "relative/file.txt")
    with pytest.raises(ToolCallFailed, match="does not exist; use the write command"):
        edit(builtins, work, "view", work / "missing.txt")
    with pytest.raises(ToolCallFailed, match="does not exist"):
        edit(builtins, work, "str_replace", work / "missing.txt", old_str="a", new_str="b")
    (work / "blob.bin").write_bytes(b"\x00\x01binary")
    with pytest.raises(ToolCallFailed, match="binary"):
        edit(builtins, work, "view", work / "blob.bin")
    with pytest.raises(ToolCallFailed, match="needs file_text"):
        edit(builtins, work, "write", work / "x.txt")
    with pytest.raises(ToolCallFailed, match="'view', 'write'|view.*write"):
        edit(builtins, work, "delete", work / "x.txt")


# --- memory ---------------------------------------------------------------------

def memory(registry: ExtensionRegistry, tool: str, work: Path, **args) -> str:
    return text_of(registry.call_tool(f"memory__{tool}", args, working_dir=str(work)))


def test_memory_is_stored_in_goose_format_globally_and_locally(builtins, work, tmp_path_factory):
    assert memory(builtins, "remember_memory", work, category="tools", data="uses ripgrep",
                  tags=["cli", "search"], is_global=False) == "Stored memory in category: tools (local)"
    memory(builtins, "remember_memory", work, category="tools", data="prefers uv", is_global=False)
    assert (work / ".goose" / "memory" / "tools.txt").read_text() == "# cli search\nuses ripgrep\n\nprefers uv\n\n"
    out = memory(builtins, "retrieve_memories", work, category="tools", is_global=False)
    assert '"tags": [\n        "cli",\n        "search"\n      ],\n      "data": "uses ripgrep"' in out
    assert "prefers uv" in out
    memory(builtins, "remember_memory", work, category="people", data="Ada likes tea", is_global=True)
    global_out = memory(builtins, "retrieve_memories", work, category="*", is_global=True)
    assert "Ada likes tea" in global_out and "ripgrep" not in global_out
    assert "No local memories" in memory(builtins, "retrieve_memories", work / "elsewhere", category="*",
                                         is_global=False)


def test_memory_removal(builtins, work):
    for data in ("keep this", "drop this"):
        memory(builtins, "remember_memory", work, category="notes", data=data, is_global=False)
    assert "Removed 1 memory entry" in memory(builtins, "remove_specific_memory", work, category="notes",
                                              memory_content="drop", is_global=False)
    with pytest.raises(ToolCallFailed, match="No memory in category notes contains 'drop'"):
        memory(builtins, "remove_specific_memory", work, category="notes", memory_content="drop", is_global=False)
    assert "keep this" in memory(builtins, "retrieve_memories", work, category="notes", is_global=False)
    memory(builtins, "remember_memory", work, category="other", data="x", is_global=False)
    assert memory(builtins, "remove_memory_category", work, category="notes",
                  is_global=False) == "Cleared memories in category: notes"
    assert memory(builtins, "remove_memory_category", work, category="*",
                  is_global=False) == "Cleared all local memory categories (1)"
    assert not (work / ".goose" / "memory").exists()


def test_memory_errors(builtins, work):
    with pytest.raises(ToolCallFailed, match="not a valid category"):
        memory(builtins, "remember_memory", work, category="../escape", data="x", is_global=False)
    with pytest.raises(ToolCallFailed, match="must not be empty"):
        memory(builtins, "remember_memory", work, category="ok", data="  ", is_global=False)


@pytest.mark.slow
def test_global_memories_are_in_the_instructions_of_a_new_server(make_registry, work):
    registry = make_registry()
    registry.add({"type": "builtin", "name": "memory"})
    memory(registry, "remember_memory", work, category="prefs", data="answer in French", is_global=True)
    assert "answer in French" not in registry.instructions()["memory"]
    registry.add({"type": "builtin", "name": "memory"})  # replaced: a new server process
    assert "Category: prefs\n- answer in French" in registry.instructions()["memory"]


# --- mcp_say --------------------------------------------------------------------

def test_say_returns_the_text_without_espeak(builtins):
    assert builtins.call_tool("mcp_say__say", {"text": "hello there"}) == [{"type": "text", "text": "hello there"}]


@pytest.mark.slow
def test_say_speaks_with_espeak_ng_when_present(make_registry, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    spoken = tmp_path / "spoken.txt"
    fake = bin_dir / "espeak-ng"
    fake.write_text(f"#!/bin/sh\ncat > {spoken}.tmp && mv {spoken}.tmp {spoken}\n")
    fake.chmod(0o755)
    server = tmp_path / "say-server"  # envs may not set PATH or PYTHONPATH: a wrapper script does
    server.write_text(f"#!/bin/sh\nPATH='{bin_dir}':\"$PATH\" PYTHONPATH='{ROOT}' exec '{sys.executable}' "
                      "-m extensions.mcp_say\n")
    server.chmod(0o755)
    registry = make_registry()
    registry.add({"type": "stdio", "name": "say", "cmd": str(server)})
    assert registry.call_tool("say__say", {"text": "-v it speaks"}) == [{"type": "text", "text": "-v it speaks"}]
    wait_until(spoken.exists, 10, "the fake espeak-ng to receive the text")
    assert spoken.read_text() == "-v it speaks"


def test_memories_are_the_users_words_0600_and_a_torn_entry_stays_apart(tmp_path):
    from extensions.memory.store import MemoryStore
    store = MemoryStore(tmp_path / "global")
    store.remember(tmp_path / "global", "notes", "first", [])
    path = tmp_path / "global" / "notes.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("half an entr")  # an append cut short
    store.remember(tmp_path / "global", "notes", "second", ["tag"])
    entries = store.retrieve(tmp_path / "global", "notes")["notes"]
    assert entries == [{"tags": [], "data": "first"}, {"tags": [], "data": "half an entr"},
                       {"tags": ["tag"], "data": "second"}]
