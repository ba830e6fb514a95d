"""A session as Markdown, for people: each message under its role, tool calls and results as code blocks."""

from __future__ import annotations

import json
from typing import Any

from goose_api.sessions.store import Session


def markdown(session: Session) -> str:
    meta = session.metadata
    lines = [f"# {meta.get('description') or session.id}", "",
             f"- session: `{session.id}`", f"- working dir: `{session.working_dir}`",
             f"- messages: {len(session.messages)}", ""]
    for message in session.messages:
        lines += [f"## {message.role.capitalize()}", ""]
        for item in message.content:
            lines += _item(item) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _item(item: dict[str, Any]) -> list[str]:
    kind = item["type"]
    if kind == "text":
        return [item["text"]]
    if kind == "image":
        return [f"*(image, {item['mimeType']})*"]
    if kind == "toolRequest":
        call = item["toolCall"]
        if call["status"] != "success":
            return [f"**Tool call** (id `{item['id']}`) could not be parsed: {call['error']}"]
        arguments = json.dumps(call["value"].get("arguments") or {}, indent=2, ensure_ascii=False)
        return [f"**Tool call** `{call['value']['name']}` (id `{item['id']}`)", "", *_block(arguments, "json")]
    if kind == "thinking":
        return ["*(the model's reasoning)*", "", *_block(item["thinking"])]
    if kind == "redactedThinking":
        return ["*(the model's reasoning, redacted)*"]
    result = item["toolResult"]
    if result["status"] != "success":
        return [f"**Tool error** (id `{item['id']}`): {result['error']}"]
    texts = [c["text"] if c["type"] == "text" else f"({c['type']})" for c in result["value"]]
    return [f"**Tool result** (id `{item['id']}`)", "", *_block("\n".join(texts))]


def _block(text: str, language: str = "") -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [fence + language, text, fence]
