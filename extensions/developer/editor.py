"""The text editor behind the developer extension's ``text_editor`` tool.

Paths must be absolute (the model cannot know our cwd) and inside the
session's working dir: every file access goes through a ``WorkArea``
(``area.py``). Every change records the file's previous content so
``undo_edit`` can put it back, per file, most recent first. Errors are
``EditorError`` with a message that tells the model what to do next.
"""

from __future__ import annotations

import threading
from pathlib import Path

from extensions.developer.area import WorkArea

MAX_VIEW_BYTES = 400_000
MAX_DIR_ENTRIES = 500
UNDO_DEPTH = 20
SNIPPET_LINES = 4


class EditorError(Exception):
    """A request the editor cannot carry out; the message is for the model."""


class TextEditor:
    def __init__(self) -> None:
        self._history: dict[Path, list[str | None]] = {}  # None: the file did not exist
        self._lock = threading.Lock()

    def view(self, area: WorkArea, path: Path, view_range: list[int] | None = None) -> str:
        if area.kind(path) == "dir":
            return _list_dir(area, path)
        text = _read(area, path)
        lines = text.splitlines()
        start, end = 1, len(lines)
        if view_range:
            if len(view_range) != 2:
                raise EditorError("view_range must be [start_line, end_line] (end_line -1 means the last line)")
            start, end = view_range[0], len(lines) if view_range[1] == -1 else view_range[1]
            if not 1 <= start <= max(end, 1) or end > len(lines):
                raise EditorError(f"view_range {view_range} is outside the file, which has {len(lines)} lines")
        return f"{path} ({len(lines)} lines)\n" + _numbered(lines[start - 1:end], start)

    def write(self, area: WorkArea, path: Path, file_text: str | None) -> str:
        if file_text is None:
            raise EditorError("write needs file_text: the whole new content of the file")
        self._save(area, path, file_text)
        return f"Wrote {len(file_text.splitlines())} lines to {path}"

    def str_replace(self, area: WorkArea, path: Path, old_str: str | None, new_str: str | None) -> str:
        if not old_str:
            raise EditorError("str_replace needs old_str: the exact text to replace, copied from the file")
        text = _read(area, path)
        count = text.count(old_str)
        if count == 0:
            raise EditorError(f"old_str was not found in {path}. View the file and copy the text exactly, "
                              "including whitespace and indentation.")
        if count > 1:
            raise EditorError(f"old_str appears {count} times in {path}; include more of the surrounding "
                              "lines so that it matches exactly once.")
        new_text = text.replace(old_str, new_str or "", 1)
        self._save(area, path, new_text)
        first_line = text[:text.index(old_str)].count("\n") + 1
        return f"Edited {path}:\n" + _snippet(new_text, first_line, (new_str or "").count("\n") + 1)

    def insert(self, area: WorkArea, path: Path, insert_line: int | None, new_str: str | None) -> str:
        if insert_line is None or new_str is None:
            raise EditorError("insert needs insert_line (0 inserts at the top) and new_str")
        text = _read(area, path)
        lines = text.splitlines(keepends=True)
        if not 0 <= insert_line <= len(lines):
            raise EditorError(f"insert_line must be between 0 and {len(lines)} (the file's line count)")
        if lines and not lines[-1].endswith("\n") and insert_line == len(lines):
            lines[-1] += "\n"
        block = new_str if new_str.endswith("\n") else new_str + "\n"
        new_text = "".join(lines[:insert_line]) + block + "".join(lines[insert_line:])
        self._save(area, path, new_text)
        return f"Inserted after line {insert_line} of {path}:\n" + _snippet(new_text, insert_line + 1,
                                                                              block.count("\n"))

    def undo_edit(self, area: WorkArea, path: Path) -> str:
        with self._lock:
            history = self._history.get(path)
            if not history:
                raise EditorError(f"There is no edit of {path} to undo")
            previous = history.pop()
        if previous is None:
            try:
                area.unlink(path)
            except FileNotFoundError:
                pass  # removed since: what undo wants
            return f"Undid the creation of {path}: the file is removed"
        area.write_text(path, previous)
        return f"Undid the last edit of {path}"

    def _save(self, area: WorkArea, path: Path, new_text: str) -> None:
        kind = area.kind(path)
        if kind == "dir":
            raise EditorError(f"{path} is a directory")
        previous = area.read_bytes(path).decode("utf-8", "replace") if kind is not None else None
        area.write_text(path, new_text)
        with self._lock:
            history = self._history.setdefault(path, [])
            history.append(previous)
            del history[:-UNDO_DEPTH]


def _read(area: WorkArea, path: Path) -> str:
    kind = area.kind(path)
    if kind is None:
        raise EditorError(f"The file {path} does not exist; use the write command to create it")
    if kind == "dir":
        raise EditorError(f"{path} is a directory; view it to list its entries")
    if area.size(path) > MAX_VIEW_BYTES:
        raise EditorError(f"{path} is larger than {MAX_VIEW_BYTES} bytes; look at parts of it with the "
                          "shell (head, tail, grep, sed -n)")
    data = area.read_bytes(path)
    if b"\0" in data:
        raise EditorError(f"{path} looks like a binary file; it cannot be viewed or edited as text")
    return data.decode("utf-8", "replace")


def _list_dir(area: WorkArea, path: Path) -> str:
    entries = area.list_dir(path)
    shown = [f"{name}/" if is_dir else name for name, is_dir in entries[:MAX_DIR_ENTRIES]]
    more = f"\n... and {len(entries) - MAX_DIR_ENTRIES} more" if len(entries) > MAX_DIR_ENTRIES else ""
    return f"{path}/ ({len(entries)} entries)\n" + "\n".join(shown) + more


def _numbered(lines: list[str], first: int) -> str:
    return "\n".join(f"{number:6d}\t{line}" for number, line in enumerate(lines, start=first))


def _snippet(text: str, first_line: int, line_count: int) -> str:
    lines = text.splitlines()
    start = max(1, first_line - SNIPPET_LINES)
    end = min(len(lines), first_line + line_count - 1 + SNIPPET_LINES)
    return _numbered(lines[start - 1:end], start)
