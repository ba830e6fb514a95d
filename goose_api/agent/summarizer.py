"""``POST /session/summarize``: replace a session's history with a summary the model writes.

The model gets the history as a transcript, with the context window's
summarizing prompt (``context_window.py``: the one automatic compaction uses), and
its summary becomes the new history: a user message with the summary and an
assistant acknowledgement, so the next prompt keeps the user/assistant
alternation. The summarizing call's tokens go to the session's running sums.
The previous file is kept beside the session as ``<id>.jsonl.<time>.bak``;
the caller holds the session for the duration, so no turn runs meanwhile.
"""

from __future__ import annotations

import logging
from typing import Callable

from goose_api.agent.context_window import CHARS_PER_TOKEN, SUMMARY_REQUEST, SUMMARY_SYSTEM, ContextWindow, transcript
from goose_api.conversation import Message
from goose_api.errors import BadRequest
from goose_api.providers.base import Provider
from goose_api.sessions.store import SessionStore

log = logging.getLogger(__name__)

SUMMARY_PREFIX = "Summary of the conversation so far:\n"
ACKNOWLEDGEMENT = "I have the summary of our conversation so far and will continue from it."


class Summarizer:
    def __init__(self, store: SessionStore, provider: Callable[[], Provider], context: ContextWindow):
        self.store = store
        self.provider = provider
        self.context = context

    def summarize(self, session_id: str) -> str:
        """Summarize and replace the history; returns the summary. The caller holds the session idle.

        Raises:
            NotFound: no such session.
            BadRequest: the session has no messages. ProviderError: the provider failed (nothing changed).
        """
        session = self.store.load(session_id)
        if not session.messages:
            raise BadRequest(f"Session {session_id} has no messages to summarize")
        provider = self.provider()
        chars = self.context.budget(provider) * CHARS_PER_TOKEN // 2  # room for the prompt and the summary
        request = SUMMARY_REQUEST.format(transcript=transcript(session.messages, chars))
        reply = provider.complete(SUMMARY_SYSTEM, [Message.user(request)], [])
        summary = reply.message.text().strip()
        backup = self.store.backup(session)
        session.add_accumulated(reply.usage)
        self.store.replace_messages(session, [Message.user(SUMMARY_PREFIX + summary),
                                              Message.assistant(ACKNOWLEDGEMENT)])
        log.info("session summarized id=%s backup=%s", session_id, backup)
        return summary
