"""Tool names as the provider APIs accept them, and back.

MCP allows any tool name ("github.search", "fs/read", a 90-character name);
OpenAI, Anthropic and Gemini accept only ``^[a-zA-Z0-9_-]{1,64}$`` (Gemini:
starting with a letter or ``_``) and refuse the whole request otherwise. The
session file keeps goose's ``extension__tool`` names: only the request and
the reply are translated.

A valid name is sent as it is. An invalid one has its other characters
replaced by ``_``; when that is too long, or taken by another tool, it is
cut and given a hash of the original name, so the same name maps the same way
on every call. Names in the history that are no longer offered always take the
hashed form, so they can never be confused with an offered tool.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

MAX_LENGTH = 64
VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INVALID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
HASH_LENGTH = 8


def _hash(name: str, salt: int = 0) -> str:
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:HASH_LENGTH]


class ToolNames:
    """The names of one request: goose name <-> wire name.

    ``letter_first``: the name must start with a letter or ``_`` (Gemini).
    """

    def __init__(self, offered: Iterable[str], *, letter_first: bool = False):
        self.letter_first = letter_first
        self._wire: dict[str, str] = {}
        offered = list(dict.fromkeys(offered))
        taken = {name for name in offered if self._valid(name)}
        for name in sorted(set(offered) - taken):
            wire = self._sanitized(name)
            salt = 0
            while wire in taken or len(wire) > MAX_LENGTH:
                wire = self._hashed(name, salt)
                salt += 1
            taken.add(wire)
            self._wire[name] = wire
        self._goose = {wire: name for name, wire in self._wire.items()}
        self.key = tuple(sorted(self._wire.items()))  # what a cache of converted messages depends on

    def wire(self, name: str) -> str:
        """The name to send for goose's ``name`` (offered or from the history)."""
        found = self._wire.get(name)
        if found is not None:
            return found
        return name if self._valid(name) else self._hashed(name)

    def goose(self, wire: str) -> str:
        """The goose name of a tool the model called (an unknown name is kept: the tool call fails clearly)."""
        return self._goose.get(wire, wire)

    def _valid(self, name: str) -> bool:
        return VALID.match(name) is not None and not (self.letter_first and not (name[0].isalpha() or name[0] == "_"))

    def _sanitized(self, name: str) -> str:
        wire = INVALID_CHARS.sub("_", name) or "_"
        return "_" + wire if self.letter_first and not (wire[0].isalpha() or wire[0] == "_") else wire

    def _hashed(self, name: str, salt: int = 0) -> str:
        return self._sanitized(name)[:MAX_LENGTH - HASH_LENGTH - 1] + "_" + _hash(name, salt)
