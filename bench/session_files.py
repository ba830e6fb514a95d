"""Goose session files of a given length, written straight to a sessions dir.

The history cycles through a realistic exchange: a prompt, an assistant message
with text and a shell tool request, the tool's result, and the answer; it is
padded with prompt/answer pairs to the exact length and always ends with an
answer (no dangling tool request). Text sizes follow a typical coding session.
"""

from __future__ import annotations

from pathlib import Path

from goose_api import conversation as conv
from goose_api.conversation import Message
from goose_api.sessions.store import new_metadata, to_jsonl

PROMPT = "Please look at the project files and tell me which module handles the session storage and why."
THOUGHT = "I'll list the files in the project to find the storage code."
RESULT = "\n".join(f"-rw-r--r-- 1 user user {1000 + i * 37:6d} Jan  1 12:00 module_{i:02d}.py" for i in range(8))
ANSWER = ("The session storage lives in sessions.py: it writes goose JSONL files atomically and keeps a parsed "
          "copy in memory so a save only writes already-encoded lines. " * 2)


def history(count: int, created: int = 1_750_000_000) -> list[Message]:
    messages: list[Message] = []
    n = 0
    while len(messages) + 4 <= count - (count % 2):
        call_id = f"call_{n}"
        messages += [
            Message("user", [conv.text(PROMPT)], created),
            Message("assistant", [conv.text(THOUGHT), conv.tool_request(call_id, "developer__shell",
                                                                        {"command": "ls -la"})], created),
            Message("user", [conv.tool_response(call_id, [{"type": "text", "text": RESULT}])], created),
            Message("assistant", [conv.text(ANSWER)], created),
        ]
        n += 1
    while len(messages) < count - 1:
        messages += [Message("user", [conv.text(PROMPT)], created), Message("assistant", [conv.text(ANSWER)], created)]
    if len(messages) < count:  # an odd count: one more prompt in front
        messages.insert(0, Message("user", [conv.text(PROMPT)], created))
    return messages[:count]


def write_session(sessions_dir: Path, session_id: str, count: int, working_dir: str) -> Path:
    """Write ``<session_id>.jsonl`` holding ``count`` messages; returns its path."""
    messages = history(count)
    metadata = new_metadata(working_dir, "benchmark session")
    metadata["message_count"] = len(messages)
    path = sessions_dir / f"{session_id}.jsonl"
    path.write_text(to_jsonl(metadata, [m.to_json() for m in messages]), encoding="utf-8")
    return path
