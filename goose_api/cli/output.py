"""How the ``goose-api`` command shows things in a terminal.

The answer's text goes to stdout, so ``goose-api ask ... > answer.txt`` keeps
only the answer; tool calls, their results, approvals and notes go to stderr.
With ``--json`` stdout carries JSON only: one object per event, or one answer.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Mapping, TextIO

from goose_api.client.events import (
    ApprovalRequiredEvent,
    Event,
    MessageEvent,
    NotificationEvent,
    ToolRequestEvent,
    ToolResponseEvent,
    tool_call,
    tool_result,
)

SHORT = 100  # characters of a tool's arguments or result shown on one line

APPROVAL_ANSWERS = {"y": "allow_once", "yes": "allow_once", "a": "always_allow", "always": "always_allow",
                    "n": "deny", "no": "deny", "": "deny"}


def shorten(text: str, limit: int = SHORT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def call_text(tool: str | None, arguments: Mapping[str, Any]) -> str:
    """``developer__shell command="ls -la"``: a tool call on one line."""
    args = " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    return shorten(f"{tool or '?'} {args}".strip())


def result_text(text: str, error: str | None) -> str:
    if error is not None:
        return f"[error] {shorten(error)}"
    return f"[ok] {shorten(text) or '(no output)'}"


def event_json(event: Event) -> str:
    return json.dumps({"id": event.id, "type": event.type, "data": event.data}, ensure_ascii=False)


class TurnPrinter:
    """Prints a run's events as they come: text as it streams, a line per tool call and result."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.mid_line = False  # stdout has text not yet ended by a newline

    def event(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            self.text(event.text)
        elif isinstance(event, ToolRequestEvent):
            self.note(f"[tool] {call_text(event.tool, event.arguments)}")
        elif isinstance(event, ToolResponseEvent):
            self.note(result_text(event.text, event.error))
        elif isinstance(event, NotificationEvent) and event.message:
            self.note(f"[{event.kind or 'note'}] {shorten(event.message, 200)}")

    def text(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.mid_line = not text.endswith("\n")

    def end_line(self) -> None:
        if self.mid_line:
            self.out.write("\n")
            self.out.flush()
            self.mid_line = False

    def note(self, line: str) -> None:
        self.end_line()
        self.err.write(line + "\n")
        self.err.flush()


def ask_approval(event: ApprovalRequiredEvent | Mapping[str, Any], err: TextIO, answers: TextIO) -> str:
    """Ask on the terminal whether a tool call may run: ``allow_once``, ``always_allow`` or ``deny``.

    No answer (end of input) denies: a call nobody approved does not run.
    """
    if isinstance(event, ApprovalRequiredEvent):
        tool, arguments = event.tool, event.arguments
    else:
        tool, arguments = event.get("tool"), event.get("arguments") or {}
    while True:
        err.write(f"Allow {call_text(tool, arguments)}? [y]es / [N]o / [a]lways: ")
        err.flush()
        line = answers.readline()
        if not line:
            err.write("\n(no answer: denied)\n")
            return "deny"
        action = APPROVAL_ANSWERS.get(line.strip().lower())
        if action is not None:
            return action
        err.write("Please answer y, n or a.\n")


def table(rows: Iterable[Iterable[Any]], header: Iterable[str]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    lines = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip()
                     for line in lines)


def sessions_table(sessions: list[dict[str, Any]]) -> str:
    rows = [(s["id"], s.get("modified", ""), (s.get("metadata") or {}).get("message_count", ""),
             shorten(str((s.get("metadata") or {}).get("description") or ""), 60)) for s in sessions]
    return table(rows, ("ID", "MODIFIED", "MESSAGES", "DESCRIPTION"))


def message_lines(message: Mapping[str, Any]) -> list[str]:
    """A goose message as lines: its text, then a line per tool call or result."""
    lines = []
    for item in message.get("content") or []:
        kind = item.get("type")
        if kind == "text" and item.get("text"):
            lines.append(f"{message.get('role')}: {item['text']}")
        elif kind == "toolRequest":
            lines.append(f"  [tool] {call_text(*tool_call(item))}")
        elif kind == "toolResponse":
            lines.append("  " + result_text(*tool_result(item)))
    return lines


def session_text(detail: Mapping[str, Any]) -> str:
    """``goose-api show``: the session's state, then its conversation."""
    usage = detail.get("usage") or {}
    head = [("session", detail["session_id"]), ("state", detail.get("state", "")),
            ("working dir", detail.get("working_dir", "")), ("messages", detail.get("message_count", "")),
            ("tokens", usage.get("total_tokens") or 0)]
    if detail.get("description"):
        head.insert(1, ("description", detail["description"]))
    head += [("waiting", f"{p['id']} {call_text(p.get('tool'), p.get('arguments') or {})}")
             for p in detail.get("pending_approvals") or []]
    if detail.get("last_error"):
        head.append(("last error", (detail["last_error"] or {}).get("message", "")))
    width = max(len(name) for name, _ in head)
    lines = [f"{name.ljust(width)}  {value}" for name, value in head] + [""]
    for message in detail.get("messages") or []:
        lines += message_lines(message)
    return "\n".join(lines).rstrip()


def extensions_table(extensions: list[dict[str, Any]]) -> str:
    rows = [(e["name"], e.get("type", ""), e.get("status", ""), len(e.get("tools") or []),
             shorten(e.get("last_error") or "", 80)) for e in extensions]
    return table(rows, ("NAME", "TYPE", "STATUS", "TOOLS", "LAST ERROR"))


def provider_text(config: Mapping[str, Any]) -> str:
    note = "" if config.get("configured", True) else "  (not configured: its credentials are not set)"
    return f"{config['provider']} {config['model']}{note}"
