"""Memories as files, in goose's format, so goose and goose-api share them.

A category is a file ``<category>.txt``; entries are separated by a blank
line, and an entry may start with a ``# tag tag`` line. Global memories live in
``<data dir>/memory``, local ones in ``<working dir>/.goose/memory``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

CATEGORY = re.compile(r"^[^/\\:\0]+$")


class MemoryRequestError(Exception):
    """A request the memory store cannot carry out; the message is for the model."""


class MemoryStore:
    def __init__(self, global_dir: Path):
        self.global_dir = global_dir

    def directory(self, is_global: bool, working_dir: Path) -> Path:
        return self.global_dir if is_global else working_dir / ".goose" / "memory"

    def remember(self, directory: Path, category: str, data: str, tags: list[str]) -> None:
        if not data.strip():
            raise MemoryRequestError("data must not be empty")
        path = _category_file(directory, category)
        path.parent.mkdir(parents=True, exist_ok=True)
        tag_line = f"# {' '.join(tags)}\n" if tags else ""
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)  # memories are the user's words
        with os.fdopen(fd, "r+", encoding="utf-8") as fh:
            size = os.fstat(fd).st_size
            torn = size and os.pread(fd, 2, max(0, size - 2)) != b"\n\n"  # an append cut short: start afresh
            fh.write(("\n\n" if torn else "") + f"{tag_line}{data}\n\n")

    def retrieve(self, directory: Path, category: str) -> dict[str, list[dict[str, object]]]:
        """Entries by category (``*`` = every category): ``{"tags": [...], "data": "..."}``."""
        categories = self.categories(directory) if category == "*" else [category]
        out = {}
        for name in categories:
            path = _category_file(directory, name)
            if path.is_file():
                out[name] = [_parse(entry) for entry in _entries(path)]
        return out

    def categories(self, directory: Path) -> list[str]:
        if not directory.is_dir():
            return []
        return sorted(p.stem for p in directory.glob("*.txt") if p.is_file() and CATEGORY.fullmatch(p.stem))

    def remove_category(self, directory: Path, category: str) -> int:
        """Remove a category (``*`` = all of them); returns how many categories went."""
        if category == "*":
            count = len(self.categories(directory))
            if directory.is_dir():
                shutil.rmtree(directory)
            return count
        path = _category_file(directory, category)
        if not path.is_file():
            return 0
        path.unlink()
        return 1

    def remove_entry(self, directory: Path, category: str, content: str) -> int:
        """Remove the entries containing ``content``; returns how many went."""
        path = _category_file(directory, category)
        if not path.is_file():
            return 0
        entries = _entries(path)
        kept = [entry for entry in entries if content not in entry]
        path.write_text("".join(f"{entry}\n\n" for entry in kept), encoding="utf-8")
        return len(entries) - len(kept)


def _category_file(directory: Path, category: str) -> Path:
    if category in ("", "*", ".", "..") or not CATEGORY.fullmatch(category):
        raise MemoryRequestError(f"{category!r} is not a valid category: use a single name without / \\ or :")
    return directory / f"{category}.txt"


def _entries(path: Path) -> list[str]:
    return [entry.strip("\n") for entry in path.read_text(encoding="utf-8").split("\n\n") if entry.strip()]


def _parse(entry: str) -> dict[str, object]:
    first, _, rest = entry.partition("\n")
    if first.startswith("#"):
        return {"tags": first[1:].split(), "data": rest}
    return {"tags": [], "data": entry}
