"""The developer extension: a shell and a text editor, as an MCP server over stdio.

Commands run in the session's working directory (sent by goose-api in the
request ``_meta``), so one server serves every session: in a sandbox where only
that directory is writable and the server's private files are not there
(``sandbox.py``); the editor works on files inside it only (``area.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from extensions.developer import shell as shell_runner
from extensions.developer.area import OutsideArea, WorkArea
from extensions.developer.editor import EditorError, TextEditor
from extensions.developer.sandbox import Sandbox
from extensions.request_meta import given_working_dir

DEFAULT_SHELL_TIMEOUT = 300.0
MAX_SHELL_TIMEOUT = 3600.0

INSTRUCTIONS = """\
The developer extension lets you work on the user's machine like a developer at a terminal.

- shell: run a bash command in the session's working directory. You get the exit code, stdout
  and stderr; a non-zero exit is reported as an error. Long output is cut in the middle, so
  filter it (grep, head, tail, wc) or redirect it to a file and view parts of it. Commands have
  a timeout; do not start interactive programs. Whatever a command leaves running in the
  background is stopped when it ends: start a server, use it and stop it in one command. Only
  the working directory is writable (and /tmp, emptied after each command). Prefer rg or grep
  to search and find to list files.
- text_editor: view, write and edit files inside the working directory by absolute path. Use
  view before editing, str_replace
  for targeted edits (old_str must match exactly once, whitespace included), insert to add lines
  after a line number, write to create or overwrite a whole file, and undo_edit to revert your
  last change to a file.
"""

server = MCPServer("developer", instructions=INSTRUCTIONS)
editor = TextEditor()
sandbox = Sandbox.from_environ(dict(os.environ))


SHELL_DESCRIPTION = """\
Run a bash command in the working directory and return its exit code, stdout and stderr.

Use it to build, test, search (rg, grep, find) and inspect the system. Output longer than about
40 kB per stream is shortened in the middle. `timeout` is in seconds (at most 3600); the command
and everything it started are killed when it runs out, and anything it left running in the
background is stopped when it ends. A non-zero exit code is reported as an error.
"""

EDITOR_DESCRIPTION = """\
View, create and edit text files by absolute path, inside the working directory.

Commands:
- view: show a file with line numbers (view_range [start, end] limits it; end -1 means the last
  line), or list a directory.
- write: create or overwrite the file with file_text.
- str_replace: replace old_str, which must appear exactly once, with new_str.
- insert: insert new_str after line insert_line (0 inserts at the top).
- undo_edit: revert the last write, str_replace or insert made to the file.
"""


@server.tool(structured_output=False, description=SHELL_DESCRIPTION, annotations=ToolAnnotations(
    title="Run a shell command", read_only_hint=False, destructive_hint=True, open_world_hint=True))
def shell(command: str, ctx: Context, timeout: float = DEFAULT_SHELL_TIMEOUT) -> str:
    """Run ``command``; a non-zero exit becomes an error result the model reads."""
    timeout = min(max(timeout, 1.0), MAX_SHELL_TIMEOUT)
    cwd = _working_dir(ctx)
    if not cwd.is_dir():
        raise ToolError(f"The working directory {cwd} does not exist")
    if sandbox.hidden(os.path.realpath(cwd)):
        raise ToolError(f"The working directory {cwd} is one of the server's private directories")
    result = shell_runner.run(command, cwd, timeout, sandbox)
    text = result.render(timeout)
    if result.exit_code != 0:
        raise ToolError(text)
    return text


@server.tool(structured_output=False, description=EDITOR_DESCRIPTION, annotations=ToolAnnotations(
    title="View and edit files", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
    open_world_hint=False))
def text_editor(command: Literal["view", "write", "str_replace", "insert", "undo_edit"], path: str, ctx: Context,
                file_text: str | None = None, old_str: str | None = None, new_str: str | None = None,
                insert_line: int | None = None, view_range: list[int] | None = None) -> str:
    """Dispatch to the editor; its errors become error results the model reads."""
    target = Path(path)
    area = WorkArea(_working_dir(ctx), sandbox.hidden)
    if not target.is_absolute():
        raise ToolError(f"The path must be absolute (for example {area.root}/main.py), not {path!r}")
    try:
        if command == "view":
            return editor.view(area, target, view_range)
        if command == "write":
            return editor.write(area, target, file_text)
        if command == "str_replace":
            return editor.str_replace(area, target, old_str, new_str)
        if command == "insert":
            return editor.insert(area, target, insert_line, new_str)
        return editor.undo_edit(area, target)
    except (EditorError, OutsideArea) as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"{command} failed for {path}: {exc.strerror or exc}") from None


def _working_dir(ctx: Context) -> Path:
    """The session's working dir; this process's own only when run by hand (goose-api always sends one)."""
    given = given_working_dir(ctx)
    if given is not None:
        return given
    if sandbox.managed:
        raise ToolError("This session has no working directory; the developer tools need one")
    return Path.cwd()
