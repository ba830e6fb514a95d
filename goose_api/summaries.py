"""``POST /session/summarize``: replace a session's history with a summary the model writes.

As goose does when asked to summarize: the model reads the whole history (as
a transcript, so tool calls need no tool declarations) and its summary
becomes the new history, a user message followed by an assistant
acknowledgement, so the next prompt keeps the user/assistant alternation.
The previous file is kept beside the session as ``<id>.jsonl.<time>.bak``.
The session is held for the duration, so no turn runs meanwhile.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from goose_api.conversation import Message
from goose_api.errors import BadRequest
from goose_api.providers.base import Provider
from goose_api.runs import RunService
from goose_api.sessions import SessionStore

log = logging.getLogger(__name__)

SYSTEM = ("You summarize a conversation between a user and an AI agent that uses tools, so that the agent "
          "can continue the work from the summary alone. Keep the user's goals and constraints, decisions, "
          "important facts and tool results (files, commands, errors), what is done and what remains. "
          "Answer with the summary only.")
REQUEST = "Summarize this conversation:\n\n{transcript}"
SUMMARY_PREFIX = "Summary of the conversation so far:\n"
ACKNOWLEDGEMENT = "I have the summary of our conversation so far and will continue from it."
MAX_TRANSCRIPT_CHARS = 400_000   # the newest part is kept when a history is longer
MAX_RESULT_CHARS = 2_000         # tool output kept per result


class Summarizer:
    def __init__(self, store: SessionStore, runs: RunService, provider: Callable[[], Provider]):
        self.store = store
        self.runs = runs
        self.provider = provider

    def summarize(self, session_id: str) -> str:
        """Summarize and replace the history; returns the summary.

        Raises:
            NotFound: no such session. SessionBusy: a turn runs on it.
            BadRequest: the session has no messages. ProviderError: the provider failed (nothing changed).
        """
        with self.runs.hold_idle(session_id):
            session = self.store.load(session_id)
            if not session.messages:
                raise BadRequest(f"Session {session_id} has no messages to summarize")
            provider = self.provider()
            reply = provider.complete(SYSTEM, [Message.user(REQUEST.format(transcript=transcript(session.messages)))],
                                      [])
            summary = reply.message.text().strip()
            backup = self.store.backup(session)
            session.record_usage(reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens)
            self.store.replace_messages(session, [Message.user(SUMMARY_PREFIX + summary),
                                                  Message.assistant(ACKNOWLEDGEMENT)])
        log.info("session summarized id=%s messages=%d backup=%s", session_id, len(session.messages), backup.name)
        return summary


def _describe(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind == "text":
        return item["text"]
    if kind == "image":
        return f"[image: {item['mimeType']}]"
    if kind == "toolRequest":
        call = item["toolCall"]
        if call["status"] != "success":
            return "[tool call that could not be parsed]"
        return f"[tool call {call['value']['name']}: {json.dumps(call['value'].get('arguments') or {})}]"
    result = item["toolResult"]
    if result["status"] == "error":
        return f"[tool error: {result['error']}]"
    text = "\n".join(part.get("text", "") for part in result["value"] if part["type"] == "text")
    return f"[tool result: {text[:MAX_RESULT_CHARS]}]"


def transcript(messages: list[Message]) -> str:
    """The history as plain text, newest part kept when it is too long."""
    text = "\n".join(f"{m.role}: " + "\n".join(_describe(item) for item in m.content) for m in messages)
    return text if len(text) <= MAX_TRANSCRIPT_CHARS else "[...]\n" + text[-MAX_TRANSCRIPT_CHARS:]
