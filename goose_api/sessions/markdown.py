"""A session as Markdown, for people: each message under its role, tool calls and results as code blocks."""

from __future__ import annotations

import json
from typing import Any

from goose_api import conversation as conv
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
    if conv.is_text(item):
        return [conv.text_of(item)]
    if conv.is_image(item):
        return [f"*(image, {conv.image_mime_type(item)})*"]
    if conv.is_thinking(item):
        return ["*(the model's reasoning)*", "", *_block(conv.thinking_text(item))] if conv.thinking_text(item) \
            else ["*(the model's reasoning, redacted)*"]
    call_id = conv.call_id(item)
    if conv.is_tool_request(item):
        name = conv.tool_call_name(item)
        if name is None:
            return [f"**Tool call** (id `{call_id}`) could not be parsed: {conv.tool_call_error(item)}"]
        arguments = json.dumps(conv.tool_call_arguments(item), indent=2, ensure_ascii=False)
        return [f"**Tool call** `{name}` (id `{call_id}`)", "", *_block(arguments, "json")]
    error = conv.tool_result_error(item)
    if error is not None:
        return [f"**Tool error** (id `{call_id}`): {error}"]
    texts = [conv.text_of(c) if conv.is_text(c) else f"({conv.kind(c)})" for c in conv.tool_result_content(item)]
    return [f"**Tool result** (id `{call_id}`)", "", *_block("\n".join(texts))]


def _block(text: str, language: str = "") -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [fence + language, text, fence]
