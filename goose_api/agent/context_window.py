"""Keeping a conversation inside the model's context window.

``ContextWindow.fit`` runs before a provider call: when the estimated prompt
(system + tools + history + room for the answer) would not fit the model's
window, the history is reduced by the configured strategy. ``compact`` runs
after the provider still said CONTEXT_LENGTH (our estimate was short); it
always reduces, and the caller retries the call once.

Strategies (``settings.context_strategy``; goose's ``GOOSE_CONTEXT_STRATEGY``):
  - ``summarize``: as goose does, the whole history is summarized by the model
    itself; the summary (a user message) replaces it, followed by an assistant
    note to carry on and the latest user request, repeated verbatim.
  - ``truncate``: the oldest messages are dropped, cutting only in front of a
    user message so no tool request loses its response; results whose requests
    went are dropped and the user's request is restated if it went too.
Either way the result is a valid goose history: it starts with a user
message and every tool request is answered. Reduced histories aim well below
the limit (``TARGET``) so the next turns do not reduce again at once.

The caller must persist a changed history (``FitResult.changed``) as the
session's new message list, or every later turn would reduce (and, with
``summarize``, pay for a summary) again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers.base import Provider, ToolSpec, Usage
from goose_api.providers.capabilities import context_limit
from goose_api.settings import Settings

log = logging.getLogger("goose_api.agent.context_window")

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4      # role and framing tokens per message
IMAGE_TOKENS = 800        # a typical image, whatever its base64 size
TARGET = 0.6              # a reduced history aims at this share of the budget
MAX_RESULT_CHARS = 2_000  # tool output kept per result in a summary transcript

SUMMARY_SYSTEM = (
    "You summarize a conversation between a user and an AI agent that uses tools, so that the agent can "
    "continue the work from the summary alone. Keep: the user's goals and constraints, decisions made, "
    "important facts and tool results (file names, paths, commands, errors), what is done and what remains. "
    "Leave out small talk and repeated tool output. Answer with the summary only.")
SUMMARY_REQUEST = "Summarize this conversation:\n\n{transcript}"
CONTINUE_CHAT = ("Your context was compacted: the previous message is a summary of the conversation so far. "
                 "Do not mention the summary; continue the conversation naturally.")
CONTINUE_TOOLS = ("Your context was compacted: the previous message is a summary of the conversation so far. "
                  "Do not mention the summary; continue calling tools as needed to finish the task.")


@dataclass
class FitResult:
    messages: list[Message]
    changed: bool
    note: str | None = None          # a sentence for the API's "status": "warning" message
    removed: int = 0                 # messages no longer in the history
    usage: Usage | None = None       # the summarizing call's tokens, if one was made


# --- estimates ----------------------------------------------------------------------

def text_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def _item_chars(item: dict[str, Any]) -> tuple[int, int]:
    """(characters, image count) of one content item."""
    if conv.is_text(item):
        return len(conv.text_of(item)), 0
    if conv.is_image(item):
        return 0, 1
    if conv.is_tool_request(item):
        return len(json.dumps(conv.tool_call_json(item), ensure_ascii=False)), 0
    if conv.is_thinking(item):  # reasoning some providers are sent back
        return len(conv.thinking_text(item)), 0
    error = conv.tool_result_error(item)
    if error is not None:
        return len(error), 0
    chars = images = 0
    for part in conv.tool_result_content(item):
        if conv.is_image(part):
            images += 1
        else:
            chars += len(conv.text_of(part) or json.dumps(part.get("resource", ""), ensure_ascii=False))
    return chars, images


def message_tokens(message: Message) -> int:
    """A cheap estimate (about four characters a token), cached on the message.

    Sessions reach thousands of messages and are re-estimated every turn; the
    cache is keyed by the content list's identity and length so an edited
    message is counted again.
    """
    key = (id(message.content), len(message.content))
    cached = message.__dict__.get("_token_estimate")
    if cached is not None and cached[0] == key:
        return cached[1]
    chars = images = 0
    for item in message.content:
        c, i = _item_chars(item)
        chars += c
        images += i
    tokens = MESSAGE_OVERHEAD + (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + images * IMAGE_TOKENS
    message.__dict__["_token_estimate"] = (key, tokens)
    return tokens


def tools_tokens(tools: list[ToolSpec]) -> int:
    return sum(text_tokens(t.name + t.description + json.dumps(t.input_schema)) + MESSAGE_OVERHEAD for t in tools)


def history_tokens(messages: list[Message]) -> int:
    return sum(map(message_tokens, messages))


# --- history shape ------------------------------------------------------------------

def is_prompt(message: Message) -> bool:
    """A user message the user typed (text, no tool results)."""
    return message.role == "user" and bool(message.text()) and not message.tool_responses()


def last_prompt(messages: list[Message]) -> Message | None:
    return next((m for m in reversed(messages) if is_prompt(m)), None)


def _without_orphans(message: Message, note: str) -> Message:
    """``message`` (a user message) with the note first and tool results whose requests are gone dropped."""
    kept = [item for item in message.content if not conv.is_tool_response(item)]
    return Message("user", [conv.text(note), *kept], message.created)


# --- the window ---------------------------------------------------------------------

class ContextWindow:
    """Applies the configured strategy when a call would not fit (see the module docstring)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.strategy = settings.context_strategy

    def limit(self, provider: Provider) -> int:
        """The setting, else what the provider knows of its window (``context_window``), else the table."""
        known = getattr(provider, "context_window", None)
        if known and not self.settings.context_limit:
            return int(known)
        return context_limit(provider.model, self.settings)

    def budget(self, provider: Provider) -> int:
        """Tokens the prompt may use: the window less room for the answer."""
        limit = self.limit(provider)
        reserve = self.settings.max_tokens or min(limit // 5, 8_192)
        return max(limit - reserve, limit // 2)

    def fit(self, provider: Provider, system: str, messages: list[Message], tools: list[ToolSpec]) -> FitResult:
        """The history to send: unchanged when it fits, else reduced by the strategy.

        Raises: ProviderError from a summarizing call that failed for another reason than its own length.
        """
        fixed = text_tokens(system) + tools_tokens(tools)
        if fixed + history_tokens(messages) <= self.budget(provider):
            return FitResult(messages, False)
        return self._reduce(provider, messages, int(self.budget(provider) * TARGET) - fixed)

    def compact(self, provider: Provider, system: str, messages: list[Message],
                tools: list[ToolSpec]) -> FitResult:
        """Reduce after the provider reported CONTEXT_LENGTH: to half of what was estimated to fit.

        ``changed`` is False when nothing can be removed; the caller then surfaces the error.
        """
        fixed = text_tokens(system) + tools_tokens(tools)
        estimated = min(fixed + history_tokens(messages), self.budget(provider))
        return self._reduce(provider, messages, estimated // 2 - fixed)

    def _reduce(self, provider: Provider, messages: list[Message], target: int) -> FitResult:
        target = max(target, 1)
        if self.strategy == "summarize" and len(messages) > 1:
            return self._summarize(provider, messages, target)
        return self._truncate(provider.model, messages, target)

    # --- truncate -----------------------------------------------------------------
    def _truncate(self, model: str, messages: list[Message], target: int) -> FitResult:
        prompt = last_prompt(messages)
        note = "Earlier messages were removed to fit the context window."
        restated = f"{note} The user's request was:\n{prompt.text()}" if prompt is not None else note
        cut = self._cut_index(messages, target - text_tokens(restated))
        if cut == 0:
            return FitResult(messages, False)
        kept = messages[cut:]
        if not any(m is prompt for m in kept):
            note = restated
        result = [_without_orphans(kept[0], note), *kept[1:]]
        log.info("context truncated model=%s removed=%d kept=%d", model, cut, len(result))
        sentence = (f"The conversation was too long for {model}'s context window: the {cut} oldest "
                    f"message(s) were removed.")
        return FitResult(result, True, sentence, removed=cut)

    @staticmethod
    def _cut_index(messages: list[Message], target: int) -> int:
        """The earliest user message (after the first) from which the rest fits; the last one if none
        does; 0 when there is no later user message to cut at."""
        suffix, best, latest = 0, 0, 0
        for index in range(len(messages) - 1, 0, -1):
            suffix += message_tokens(messages[index])
            if messages[index].role != "user":
                continue
            latest = latest or index
            if suffix > target:
                break
            best = index
        return best or latest

    # --- summarize ----------------------------------------------------------------
    def _summarize(self, provider: Provider, messages: list[Message], target: int) -> FitResult:
        prompt = last_prompt(messages)
        chars = max(target, 1_000) * CHARS_PER_TOKEN
        for _attempt in range(3):
            try:
                reply = provider.complete(SUMMARY_SYSTEM, [Message.user(SUMMARY_REQUEST.format(
                    transcript=transcript(messages, chars)))], [])
                break
            except ProviderError as error:
                if error.kind != ProviderError.CONTEXT_LENGTH:
                    raise
                chars //= 2
        else:
            log.warning("context summary did not fit model=%s; truncating instead", provider.model)
            return self._truncate(provider.model, messages, target)
        continuation = CONTINUE_CHAT if messages[-1] is prompt else CONTINUE_TOOLS
        result = [Message.user(f"Summary of the conversation so far:\n{reply.message.text()}"),
                  Message.assistant(continuation),
                  Message.user(prompt.text() if prompt is not None else "Please continue.")]
        log.info("context summarized model=%s replaced=%d", provider.model, len(messages))
        sentence = (f"The conversation was too long for {provider.model}'s context window: its {len(messages)} "
                    "messages were replaced by a summary.")
        return FitResult(result, True, sentence, removed=len(messages), usage=reply.usage)


def _describe(item: dict[str, Any]) -> str:
    if conv.is_text(item):
        return conv.text_of(item)
    if conv.is_image(item):
        return f"[image: {conv.image_mime_type(item)}]"
    if conv.is_tool_request(item):
        name = conv.tool_call_name(item)
        if name is None:
            return "tool_request: [unparseable]"
        return f"tool_request({name}): {json.dumps(conv.tool_call_arguments(item))}"
    if conv.is_thinking(item):
        return "[the model's reasoning]"
    error = conv.tool_result_error(item)
    if error is not None:
        return f"tool_response: error: {error}"
    text = conv.tool_result_text(item) or "[non-text content]"
    return "tool_response: " + (text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " [...]")


def transcript(messages: list[Message], max_chars: int) -> str:
    """The history as text for the summarizer; when too long, the newest part is kept."""
    lines = [f"[{m.role}]: " + "\n".join(_describe(i) for i in m.content) for m in messages]
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text
    return "[... the oldest part of the conversation is omitted ...]\n" + text[-max_chars:]
