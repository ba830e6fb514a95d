"""JSON text from outside (request bodies, imported sessions) parsed with a limit on its nesting.

Python's parser recurses per level: ``[[[[...]]]]`` a hundred thousand deep
raises ``RecursionError`` (not a ``ValueError``), and anything that walks a
deep value later (validation, ``json.dumps`` when it is saved) recurses again.
``loads`` refuses such text with ``TooDeep``, a ``ValueError``, so every caller
that already refuses text that is not JSON refuses this too.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100  # arrays and objects inside each other; a goose message needs about 8


class TooDeep(ValueError):
    """The JSON nests arrays and objects deeper than allowed."""

    def __init__(self, limit: int):
        super().__init__(f"the JSON nests arrays and objects more than {limit} deep")
        self.limit = limit


def loads(text: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads``, refusing nesting deeper than ``max_depth``.

    Raises:
        TooDeep: nested too deep. ValueError: not JSON (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(max_depth) from None
    check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raises ``TooDeep`` if ``value`` nests lists and dicts deeper than ``max_depth`` (walked without recursion)."""
    level = [value] if isinstance(value, (list, dict)) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise TooDeep(max_depth)
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (list, dict)):
                    below.append(child)
        level = below
