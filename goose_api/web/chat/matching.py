"""Which session a chat front end's conversation continues.

A front end resends the whole conversation each turn. Seen as user prompts
and the answers goose gave (a turn's answer: the text of its last assistant
message), a session is continued by a conversation whose earlier messages are
exactly its history. The client's copy of an answer may carry more than the
final text (a streamed answer includes what the model said before its tool
calls), so an answer matches when it ends with the session's. Only the
caller's sessions are candidates, the most recently active first.
"""

from __future__ import annotations

from goose_api.auth import Client
from goose_api.conversation import Message
from goose_api.errors import SessionNotFound
from goose_api.sessions.access import SessionAccess

CANDIDATES = 50  # the caller's most recently active sessions looked at


def transcript(messages: list[Message]) -> list[tuple[str, str]]:
    """A goose history as a chat: each user prompt and the answer of its turn (tool traffic left out)."""
    chat: list[tuple[str, str]] = []
    for message in messages:
        if message.role == "user" and not message.tool_responses():
            chat.append(("user", message.text()))
        elif message.role == "assistant" and chat:
            if chat[-1][0] == "assistant":
                chat[-1] = ("assistant", message.text())  # the turn's answer is its last assistant message
            else:
                chat.append(("assistant", message.text()))
    return chat


def continues(earlier: list[tuple[str, str]], history: list[tuple[str, str]]) -> bool:
    if len(earlier) != len(history) or not earlier:
        return False
    for (role, text), (own_role, own_text) in zip(earlier, history):
        if role != own_role:
            return False
        if role == "user" and text.strip() != own_text.strip():
            return False
        if role == "assistant" and not text.strip().endswith(own_text.strip()):
            return False
    return True


def find_session(access: SessionAccess, client: Client, earlier: list[tuple[str, str]]) -> str | None:
    """The caller's session whose history ``earlier`` is, or None."""
    if not earlier:
        return None
    store = access.store
    for session_id in access.visible([sid for sid, _ in store.list_ids()], client)[:CANDIDATES]:
        try:
            session = store.load(session_id)
        except SessionNotFound:
            continue  # deleted meanwhile
        if continues(earlier, transcript(session.messages)):
            return session_id
    return None


def seed(earlier: list[tuple[str, str]]) -> list[Message]:
    """The earlier messages as the goose history a new session starts with."""
    return [Message.user(text) if role == "user" else Message.assistant(text) for role, text in earlier]
