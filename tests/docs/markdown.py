"""The fenced code blocks of README.md and docs/*.md, their annotations, and the answers they show.

A block may be preceded (directly) by an HTML comment that tells the harness how to run it:

    <!-- doc-test: {"model": ["Hello!"]} -->
    ```sh
    curl -s http://127.0.0.1:8080/session/start ...   # {"status": "success", "session_id", ...}
    ```

The comment holds one JSON object; its keys are listed in ``OPTIONS`` (docs/development.md explains them).
In a ``sh`` block, a comment that starts with ``{`` after a command, or on the lines right below it, is the
answer the docs show for that command; ``# HTTP/1.1 202 ...`` shows its status line and
``# prints: TEXT`` its whole output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The dialect pages talk to the server through the openai SDK and the mcp client, in their own processes:
# tests/live/test_dialect_docs.py runs each of their blocks with the answers they need.
DIALECT_PAGES = ("chat-completions.md", "mcp.md", "responses.md")
PAGES = (ROOT / "README.md", *sorted(page for page in (ROOT / "docs").glob("*.md") if page.name not in DIALECT_PAGES))
RUNNABLE = ("sh", "python")
DATA = ("json", "yaml", "ini", "text")
OPTIONS = {
    "model": "the fake model's replies while this block runs (strings, or {tool, args, id} tool calls)",
    "server": "restart the page's server with these GOOSE_API_* settings from this block on",
    "given": "shell commands run before the block, unseen (state the reader would have: a session, a file)",
    "replace": "text to swap before running: what the docs show -> what the test can reach",
    "serves": "the block starts a server in the foreground: run it, wait for /health, check, stop it",
    "covered_by": "tests/...py::test_name that runs this block's commands itself",
    "errors": "the block shows error answers on purpose",
}
FENCE = re.compile(r"^```(\S*)\s*$")
ANNOTATION = re.compile(r"<!--\s*doc-test:\s*(\{.*\})\s*-->\s*$", re.S)
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
ENUM_WORD = re.compile(r"^[a-z][a-z_]*$")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    text: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


@dataclass
class Command:
    text: str
    line: int
    expected_json: str | None = None
    expected_status: int | None = None
    expected_text: str | None = None


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, with the annotation right above it (if any)."""
    lines = page.read_text().splitlines()
    found, n = [], 0
    while n < len(lines):
        match = FENCE.match(lines[n])
        if not match:
            n += 1
            continue
        start, lang = n, match.group(1)
        end = next((k for k in range(n + 1, len(lines)) if lines[k].startswith("```")), None)
        assert end is not None, f"{page}:{n + 1}: the fence is never closed"
        found.append(Block(page, start + 1, lang, "\n".join(lines[start + 1:end]) + "\n",
                           annotation(lines[:start], page, start + 1)))
        n = end + 1
    return found


def annotation(before: list[str], page: Path, line: int) -> dict[str, Any]:
    """The ``<!-- doc-test: {...} -->`` comment ending on the line right above a fence."""
    if not before or not before[-1].rstrip().endswith("-->"):
        return {}
    k = len(before) - 1
    while k >= 0 and "<!--" not in before[k]:
        k -= 1
    match = ANNOTATION.search("\n".join(before[k:]))
    if not match:
        return {}
    options = json.loads(match.group(1))
    unknown = set(options) - set(OPTIONS)
    assert not unknown, f"{page}:{line}: unknown doc-test options {sorted(unknown)}"
    return options


def commands(script: str) -> list[Command]:
    """Split a shell block into commands (with their ``\\`` continuation lines) and the answers shown."""
    out: list[Command] = []
    pending: list[str] = []
    for number, line in enumerate(script.splitlines(), 1):
        stripped = line.strip()
        if pending:
            pending.append(line)
        elif stripped.startswith("#"):
            shown = stripped.lstrip("#").strip()
            if out and out[-1].expected_json is None and shown.startswith(("{", "[")):
                out[-1].expected_json = balanced(shown)
            elif out and shown.startswith("HTTP/1.1 "):
                out[-1].expected_status = int(shown.split()[1])
            elif out and shown.startswith("prints: "):
                out[-1].expected_text = shown.removeprefix("prints: ")
            continue
        elif not stripped:
            continue
        else:
            pending = [line]
            start = number
        if not line.endswith("\\"):
            command, comment = split_comment("\n".join(pending))
            shown = comment.strip() if comment else ""
            out.append(Command(command, start, balanced(shown) if shown.startswith(("{", "[")) else None))
            pending = []
    return out


def split_comment(command: str) -> tuple[str, str | None]:
    """A command and its trailing ``# comment`` (a ``#`` outside quotes, after a space)."""
    quote = None
    for i, char in enumerate(command):
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1] in " \t"):
            return command[:i].rstrip(), command[i + 1:]
    return command, None


def balanced(text: str) -> str:
    """The leading ``{...}`` / ``[...]`` of a comment (prose may follow it)."""
    depth, quote = 0, False
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote and char in "{[":
            depth += 1
        elif not quote and char in "}]":
            depth -= 1
            if depth == 0:
                return text[:i + 1]
    return text


def shape(shown: str) -> tuple[set[str], dict[str, Any]]:
    """The top-level keys an answer the docs show names, and the values it gives as plain words or literals.

    ``{"status": "success", "session_id", "messages": [...]}`` names three keys and fixes ``status``; ids,
    sentences, ``...`` and ``<placeholders>`` are illustrations and are not compared.
    """
    keys: set[str] = set()
    values: dict[str, Any] = {}
    depth, i, in_value = 0, 0, False
    while i < len(shown):
        char = shown[i]
        if char == '"':
            literal = STRING.match(shown, i).group(0)
            i += len(literal)
            if depth == 1 and not in_value:
                key = json.loads(literal)
                keys.add(key)
                rest = shown[i:].lstrip()
                if rest[:1] == ":":
                    in_value = True
                    value = _plain_value(rest[1:].lstrip())
                    if value is not _SKIP:
                        values[key] = value
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        elif char == "," and depth == 1:
            in_value = False
        i += 1
    return keys, values


_SKIP = object()


def _plain_value(text: str) -> Any:
    """A value that ends right after itself (``"idle",`` ``true}``) and is a word, a number or a literal."""
    match = re.match(r'("(?:[^"\\]|\\.)*"|true|false|null|-?\d+(?:\.\d+)?)\s*([,}])', text)
    if not match:
        return _SKIP
    value = json.loads(match.group(1))
    if isinstance(value, str) and not ENUM_WORD.match(value):
        return _SKIP
    return value


def body_of(output: str) -> tuple[int | None, str]:
    """(HTTP status, body) of ``curl -i`` output, or (None, output) without headers."""
    if not output.startswith("HTTP/"):
        return None, output
    head, _, body = output.replace("\r\n", "\n").partition("\n\n")
    return int(head.split()[1]), body
