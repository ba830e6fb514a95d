"""A provider's cache of converted messages, for as long as each message lives.

A session's history is sent whole on every call but only grows at its end:
converting (and JSON-encoding) every message again would cost more than the
rest of a turn. A provider owns one ``WireCache``; an entry is found by the
message object itself (held weakly, so a message that goes frees its entry)
and is valid while the message's content list is the same list of the same
length and the conversion's inputs (``key``) are the same.
"""

from __future__ import annotations

import weakref
from typing import Any

from goose_api.conversation import Message


class _Ref(weakref.ref):
    __slots__ = ("slot",)


class WireCache:
    def __init__(self) -> None:
        # id(message) -> (ref, content list, its length, key, value): one flat tuple per message, since the
        # cyclic garbage collector walks every cached object on each full collection.
        # No lock: a slot is freed only by its message's death, and the callback runs before the id can be
        # reused, so no other message can be at that slot meanwhile; dict operations are atomic.
        self._entries: dict[int, tuple[_Ref, list, int, Any, Any]] = {}

    def get(self, message: Message, key: Any) -> Any:
        """The value cached for ``message`` under ``key``, or None."""
        entry = self._entries.get(id(message))
        if entry is None or entry[0]() is not message or entry[1] is not message.content \
                or entry[2] != len(message.content) or entry[3] != key:
            return None
        return entry[4]

    def put(self, message: Message, key: Any, value: Any) -> None:
        ref = _Ref(message, self._forget)
        ref.slot = id(message)
        self._entries[ref.slot] = (ref, message.content, len(message.content), key, value)

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, ref: _Ref) -> None:
        """The message is gone: drop its entry (unless a newer message took the slot)."""
        entry = self._entries.get(ref.slot)
        if entry is not None and entry[0] is ref:
            self._entries.pop(ref.slot, None)
