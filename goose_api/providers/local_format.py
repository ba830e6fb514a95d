"""Goose messages <-> the embedded model's chat messages, tool calls included, as pure functions.

llama-cpp renders the chat template stored in the GGUF, and SmolLM2's template
knows only a role and a text per message, so tools travel inside the text, in
the format of SmolLM2's tool-calling chat templates: the tools as JSON
in the system prompt, a call as ``<tool_call>[{"name": ..., "arguments": {...}}]
</tool_call>`` as the whole assistant turn, a result as ``<tool_response>...
</tool_response>`` in the next user turn. A reply is plain text or one call
(``local_grammar`` holds it to the offered tools; ``parse_call`` reads it).

The model gets one round of tool calls per prompt: after a tool's result it
answers. A 135M model shown a result calls a tool again, with made-up
arguments, until ``max_turns`` runs out (``tool_rounds`` counts the rounds).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.providers import tool_calls as tc
from goose_api.providers.base import ToolSpec

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
MAX_TOOL_ROUNDS = 1
CALL_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def tools_section(tools: list[ToolSpec]) -> str:
    """The system prompt's part that offers the tools and says how to call them."""
    listed = "\n".join(json.dumps({"name": t.name, "description": t.description.strip(),
                                   "parameters": t.input_schema}, ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou can call one of these tools:\n"
            f"<tools>\n{listed}\n</tools>\n"
            "To call a tool, reply with the call alone, in this format:\n"
            f'{CALL_OPEN}[{{"name": "tool_name", "arguments": {{"argument_name": "value"}}}}]{CALL_CLOSE}\n'
            f"The tool's result comes back in {RESULT_OPEN}{RESULT_CLOSE}. "
            "If no tool is needed, answer in plain text.")


def to_chat(system: str, messages: list[Message], tools: list[ToolSpec]) -> list[dict[str, str]]:
    """Role/content messages for the GGUF's chat template; the tools join the system prompt."""
    system = "\n\n".join(filter(None, [system, tools_section(tools) if tools else ""]))
    out = [{"role": "system", "content": system}] if system else []
    invalid = tc.invalid_call_ids(messages)
    for message in messages:
        content = (_assistant_text(message, invalid) if message.role == "assistant"
                   else _user_text(message, invalid))
        if content:
            out.append({"role": message.role, "content": content})
    return out


def call_text(requests: list[dict[str, Any]]) -> str:
    calls = [{"name": conv.tool_call_name(r), "arguments": conv.tool_call_arguments(r)} for r in requests]
    return f"{CALL_OPEN}{json.dumps(calls, ensure_ascii=False)}{CALL_CLOSE}"


def _assistant_text(message: Message, invalid: set[str]) -> str:
    calls = [r for r in message.tool_requests() if conv.call_id(r) not in invalid]
    return "\n".join(filter(None, [message.text(), call_text(calls) if calls else ""]))


def _user_text(message: Message, invalid: set[str]) -> str:
    parts = []
    for item in message.content:
        if conv.is_tool_response(item) and conv.call_id(item) in invalid:
            parts.append(tc.invalid_call_text(item))
        elif conv.is_tool_response(item):
            images = "\n[an image]" * len(tc.result_images(item))  # the model reads no images
            parts.append(f"{RESULT_OPEN}\n{tc.result_text(item)}{images}\n{RESULT_CLOSE}")
        elif conv.is_text(item):
            parts.append(conv.text_of(item))
        elif conv.is_image(item):
            parts.append("[an image]")
    return "\n".join(filter(None, parts))


def tool_rounds(messages: list[Message]) -> int:
    """Tool results the model has had since the user's last prompt."""
    rounds = 0
    for message in reversed(messages):
        if message.role != "user":
            continue
        if not message.tool_responses():
            break
        rounds += 1
    return rounds


def may_call_tools(messages: list[Message], tools: list[ToolSpec]) -> bool:
    return bool(tools) and tool_rounds(messages) < MAX_TOOL_ROUNDS


def parse_call(text: str, new_id: Callable[[], str] = tc.new_call_id) -> list[dict[str, Any]]:
    """The tool requests of a reply the model started as a call: ``<tool_call>[...]</tool_call>``.

    A reply that is not a complete JSON list of calls (cut by the output limit)
    becomes a tool request error: it is answered with the error, never run.
    """
    body = text.removeprefix(CALL_OPEN).removesuffix(CALL_CLOSE)
    try:
        calls = json.loads(body) if text.startswith(CALL_OPEN) else None
    except ValueError:
        calls = None
    if calls is None:
        name = CALL_NAME.search(body)
        what = f"The call to {name.group(1)}" if name else "A tool call"
        return [conv.tool_request_error(new_id(), f"{what} is incomplete and was not run: {text[:200]}")]
    if not isinstance(calls, list) or not calls or not all(_is_call(c) for c in calls):
        return [conv.tool_request_error(new_id(), f"Not a list of tool calls: {body[:200]}")]
    return [tc.parse_arguments(new_id(), call["name"], call["arguments"]) for call in calls]


def _is_call(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name"), str) and isinstance(value.get("arguments"), dict)
