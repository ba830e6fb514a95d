"""Tool output kept in the session: at most ``max_tool_output_chars`` per result, truncated with a note.

A tool (or a prompt that makes the model call one) can return megabytes: the
whole output would be saved in the goose file, written to the journal and the
event log, and sent to the provider on every later call. goose keeps text up to
200,000 characters per result; past that, the model reads a note instead.
Here a result's first items are kept while they fit; the first that does not
is cut if it is text (an image or a resource is left out), nothing after it is
kept, and a note at the end says how much the tool returned and how much is
kept. An error message is cut the same way.
"""

from __future__ import annotations

import json
from typing import Any

from goose_api import conversation as conv

NOTE = ("[The tool's output was {total} characters; only the first {kept} are kept "
        "(max_tool_output_chars). Ask for less output, e.g. a narrower query or a range.]")


def limit_content(content: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """``content`` if it fits in ``max_chars``, else what fits, then the note."""
    sizes = [_size(item) for item in content]
    total = sum(sizes)
    if total <= max_chars:
        return content
    kept: list[dict[str, Any]] = []
    room = max_chars
    for item, size in zip(content, sizes):
        if size <= room:
            kept.append(item)
            room -= size
            continue
        if room > 0 and conv.is_text(item):
            kept.append(conv.text(conv.text_of(item)[:room]))
        room = 0
    kept.append(conv.text(NOTE.format(total=total, kept=max_chars)))
    return kept


def limit_text(text: str, max_chars: int) -> str:
    """An error message cut to ``max_chars``, with the note."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + "\n" + NOTE.format(total=len(text), kept=max_chars)


def _size(item: dict[str, Any]) -> int:
    """A text item counts its text; any other item its JSON (an image: mostly its base64 data)."""
    return len(conv.text_of(item)) if conv.is_text(item) else len(json.dumps(item, ensure_ascii=False))
