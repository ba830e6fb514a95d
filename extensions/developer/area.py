"""The files ``text_editor`` may touch: those inside the session's working dir, never a hidden one.

Every access opens the file first and then checks where the opened file
really is (``/proc/self/fd``), so a symlink, a ``..`` or a path swapped
between a check and its use cannot lead outside: what is checked is what is
read or written. New files and directories are created relative to an opened,
checked parent directory, never through a symlink (``O_NOFOLLOW``).
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class OutsideArea(Exception):
    """A path the editor may not touch; the message is for the model."""


class WorkArea:
    def __init__(self, root: Path, hidden: Callable[[str], bool]):
        self.root = os.path.realpath(root)
        self._hidden = hidden

    # --- questions -------------------------------------------------------------------

    def kind(self, path: Path) -> str | None:
        """"dir", "file", "other" or None (no such path)."""
        try:
            with self._opened(path, os.O_RDONLY | os.O_NONBLOCK) as fd:
                mode = os.fstat(fd).st_mode
        except FileNotFoundError:
            return None
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    def size(self, path: Path) -> int:
        with self._opened(path, os.O_RDONLY | os.O_NONBLOCK) as fd:
            return os.fstat(fd).st_size

    def list_dir(self, path: Path) -> list[tuple[str, bool]]:
        """Entries of a directory as (name, is a directory), sorted; hidden ones left out."""
        with self._opened(path, os.O_RDONLY | os.O_DIRECTORY) as fd:
            real = self._real(fd)
            with os.scandir(fd) as entries:
                found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries
                         if not self._hidden(os.path.join(real, e.name))]
        return sorted(found)

    # --- reading and writing ---------------------------------------------------------

    def read_bytes(self, path: Path) -> bytes:
        with self._opened(path, os.O_RDONLY | os.O_NONBLOCK) as fd:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OutsideArea(f"{path} is not a regular file")
            with os.fdopen(os.dup(fd), "rb") as fh:
                return fh.read()

    def write_text(self, path: Path, text: str) -> None:
        """Replace (or create) the file's content; missing parent directories are created."""
        with self._parent(path, create=True) as parent:
            fd = os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent)
            try:
                self._check(fd, path)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise OutsideArea(f"{path} is not a regular file")
                os.ftruncate(fd, 0)
                with os.fdopen(os.dup(fd), "w", encoding="utf-8") as fh:
                    fh.write(text)
            finally:
                os.close(fd)

    def unlink(self, path: Path) -> None:
        with self._parent(path, create=False) as parent:
            os.unlink(path.name, dir_fd=parent)

    # --- opening, checked --------------------------------------------------------------

    @contextmanager
    def _opened(self, path: Path, flags: int) -> Iterator[int]:
        fd = os.open(self._lexical(path), flags | os.O_CLOEXEC)
        try:
            self._check(fd, path)
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _parent(self, path: Path, *, create: bool) -> Iterator[int]:
        """The opened, checked directory ``path`` is in (made, one checked level at a time, if ``create``)."""
        parent = Path(self._lexical(path)).parent
        missing: list[str] = []
        while not os.path.lexists(parent) and create:
            missing.insert(0, parent.name)
            parent = parent.parent
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._check(fd, path)
            for name in missing:
                os.mkdir(name, 0o755, dir_fd=fd)
                child = os.open(name, NOFOLLOW_DIR, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _lexical(self, path: Path) -> str:
        """The path with ``..`` resolved as written; one outside the working dir is refused before any look at it."""
        if not path.is_absolute():
            raise OutsideArea(f"The path must be absolute (for example {self.root}/main.py), not {str(path)!r}")
        lexical = os.path.normpath(path)
        if not _inside(lexical, self.root) and not _inside(os.path.realpath(os.path.dirname(lexical)), self.root):
            raise OutsideArea(self._outside(path))
        return lexical

    def _real(self, fd: int) -> str:
        return os.readlink(f"/proc/self/fd/{fd}")

    def _outside(self, path: Path) -> str:
        return (f"{path} is outside the working directory {self.root}: text_editor works on files inside the "
                "session's working directory only")

    def _check(self, fd: int, path: Path) -> None:
        real = self._real(fd)
        if not _inside(real, self.root):
            raise OutsideArea(self._outside(path))
        if self._hidden(real):
            raise OutsideArea(f"{path} is one of the server's private files; it cannot be viewed or edited")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
