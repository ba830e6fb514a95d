"""SessionStore: goose v1.0 JSONL session files, and the one parser of that format.

Line 1 of ``<id>.jsonl`` is the session metadata, every further line one goose
message. Nothing else reads or writes the format: fork, export, import, the
sessions.db tool and the metrics go through the store or the module's
functions (``parse_jsonl``, ``to_jsonl``, ``read_jsonl_file``). Each save rewrites the file atomically (temp file, fsync,
``os.replace``) so goose never sees a half-written line. Parsed sessions are
cached per process with their messages already encoded (one growing buffer),
so a save costs one write of ready bytes, with no join or copy of the history,
and a load after another worker's write re-reads only when the file changed
(inode, size and mtime are compared).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

from goose_api.conversation import ACCUMULATED_FIELDS, TOKEN_FIELDS, Message, MessageFormatError, accumulated_field
from goose_api.errors import ApiError, BadRequest, Conflict, SessionBusy, SessionNotFound
from goose_api.storage import atomic, bounded_json, flock
from goose_api.storage.data_dir import DataDir

log = logging.getLogger(__name__)

SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # always ``fullmatch``: ``$`` also matches before a "\n"
RESERVED_SESSION_IDS = ("start", "reply", "end", "summarize")  # /session/<name> routes of their own
I32_MAX = 2**31 - 1


class SessionCorrupt(ApiError):
    status, code = 500, "session_corrupt"


def new_metadata(working_dir: str, description: str = "") -> dict[str, Any]:
    """Goose's SessionMetadata, snake_case, every field written (nulls included)."""
    meta: dict[str, Any] = {"working_dir": working_dir, "description": description,
                            "schedule_id": None, "message_count": 0}
    meta.update({f: None for f in TOKEN_FIELDS + ACCUMULATED_FIELDS})
    return meta


def describe(prompt: str, words: int = 4) -> str:
    """A description of at most four words, taken from the first prompt."""
    return " ".join(prompt.split()[:words])[:100]


class SessionFormatError(ValueError):
    """Text that is not goose JSONL (the message names the line)."""


def parse_jsonl(text: str) -> tuple[Any, list[Any]]:
    """goose JSONL text as (line 1's metadata, the messages' JSON); blank lines are skipped.

    Nothing is validated beyond JSON: ``Message.from_json`` checks each message.

    Raises:
        SessionFormatError: a line is not JSON, or there is no line at all.
    """
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                lines.append(bounded_json.loads(line))
            except ValueError as exc:
                raise SessionFormatError(f"line {number} is not JSON: {exc}") from None
    if not lines:
        raise SessionFormatError("the JSONL has no metadata line")
    return lines[0], lines[1:]


def read_jsonl_file(path: Path) -> tuple[Any, list[Any]]:
    """A goose JSONL file anywhere (e.g. the goose CLI's), as ``parse_jsonl`` reads it.

    Raises:
        OSError: it cannot be read. SessionFormatError: it is not goose JSONL.
    """
    return parse_jsonl(Path(path).read_text(encoding="utf-8"))


def to_jsonl(metadata: dict[str, Any], messages: Iterable[dict[str, Any]]) -> str:
    """goose JSONL: the metadata line, then one line per message's JSON."""
    return "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in (metadata, *messages))


def _clamp(value: int | None) -> int | None:
    return None if value is None else max(0, min(int(value), I32_MAX))


class TokenCounts(Protocol):
    """A provider call's tokens, named as in ``TOKEN_FIELDS`` (``providers.base.Usage`` is one)."""

    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None


@dataclass
class Session:
    id: str
    path: Path
    metadata: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)  # ``messages`` encoded, one "\n"-ended line each
    stamp: tuple[int, int, int] | None = None  # the saved copy's version; [2]: when saved (ns since the epoch)

    @property
    def working_dir(self) -> str:
        return self.metadata.get("working_dir") or ""

    @property
    def updated(self) -> float:
        """When the session was last saved (seconds since the epoch)."""
        return self.stamp[2] / 1e9 if self.stamp is not None else time.time()

    def record_usage(self, usage: TokenCounts) -> None:
        """A provider call's tokens (a ``providers.base.Usage``): the last call's, and the running sums."""
        self.metadata.update({name: _clamp(getattr(usage, name)) for name in TOKEN_FIELDS})
        self.add_accumulated(usage)

    def add_accumulated(self, usage: TokenCounts) -> None:
        """Add tokens to the running sums only (e.g. a summarizing call's)."""
        for name in TOKEN_FIELDS:
            value = getattr(usage, name)
            if value is not None:
                acc = accumulated_field(name)
                self.metadata[acc] = _clamp((self.metadata.get(acc) or 0) + value)


class SessionStore:
    """Reads and writes sessions; one instance per process, safe across threads."""

    def __init__(self, data: DataDir, cache_size: int = 128):
        self.data = data
        self.dir = data.sessions
        self.dir.mkdir(parents=True, exist_ok=True)
        data.session_locks.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, Session] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._id_base, self._id_next = "", 1

    # --- ids and paths -------------------------------------------------------

    @staticmethod
    def check_id(session_id: str) -> str:
        if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
            raise BadRequest("session_id must be 1-128 characters of letters, digits, '_' or '-'")
        return session_id

    def path(self, session_id: str) -> Path:
        return self.dir / f"{self.check_id(session_id)}.jsonl"

    def location(self, session_id: str) -> str:
        """Where the session is kept, as listings show it (goose's ``path``)."""
        return str(self.path(session_id))

    def exists(self, session_id: str) -> bool:
        return self.path(session_id).is_file()

    # --- create / load / save ------------------------------------------------

    def create(self, session_id: str | None, working_dir: str, description: str = "") -> Session:
        """Create and save an empty session, claiming its id with an exclusive create.

        Raises:
            Conflict: a session with that id already exists.
        """
        metadata = new_metadata(working_dir, description)
        for candidate in self._candidate_ids(session_id):
            path = self.path(candidate)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if session_id is not None:
                    raise Conflict(f"Session {session_id} already exists; continue it with POST /session/reply")
                continue
            os.close(fd)
            session = Session(candidate, path, metadata)
            self.save(session, durable=False)  # nothing of the user's yet: the prompt's save right after syncs
            log.info("session created id=%s", candidate)
            return session
        raise Conflict("Could not allocate a session id; try again")

    def _candidate_ids(self, session_id: str | None) -> Iterator[str]:
        if session_id is not None:
            yield self.check_id(session_id)
            return
        for _ in range(10000):
            yield self._next_generated_id()

    def _next_generated_id(self) -> str:
        """goose's ``YYYYMMDD_HHMMSS``, then ``_2``, ``_3``... for more in the same second.

        Each candidate is handed out once per process, so a burst of sessions
        costs one try each, not a probe of every id taken earlier in that second
        (another worker's ids are still skipped by the exclusive create).
        """
        base = time.strftime("%Y%m%d_%H%M%S")
        with self._ids_lock:
            if base != self._id_base:
                self._id_base, self._id_next = base, 1
            n = self._id_next
            self._id_next += 1
        return base if n == 1 else f"{base}_{n}"

    def load(self, session_id: str) -> Session:
        """The session, from cache when the file has not changed since.

        Raises:
            SessionNotFound: no such session.
            SessionCorrupt: the file cannot be read as a goose session.
        """
        path = self.path(session_id)
        try:
            stamp = _stamp(path)
        except FileNotFoundError:
            self._forget(session_id)
            raise SessionNotFound(session_id) from None
        with self._cache_lock:
            cached = self._cache.get(session_id)
            if cached is not None and cached.stamp == stamp:
                self._cache.move_to_end(session_id)
                return cached
        session = self._read(session_id, path)
        self._remember(session)
        return session

    def _read(self, session_id: str, path: Path) -> Session:
        try:
            with open(path, encoding="utf-8") as fh:
                stamp = _stamp_fd(fh.fileno())
                text = fh.read()
        except FileNotFoundError:
            raise SessionNotFound(session_id) from None
        raw_lines = text.splitlines()
        if not raw_lines or not raw_lines[0].strip():
            return Session(session_id, path, new_metadata(""), stamp=stamp)
        try:
            metadata = bounded_json.loads(raw_lines[0])
            if not isinstance(metadata, dict):
                raise ValueError("metadata line is not an object")
        except ValueError as exc:
            raise SessionCorrupt(f"Session {session_id} cannot be read: line 1: {exc}") from None
        messages, lines = [], []
        for number, line in enumerate(raw_lines[1:], start=2):
            if not line.strip():
                continue
            try:
                messages.append(Message.from_json(bounded_json.loads(line)))
            except (ValueError, MessageFormatError) as exc:
                if number == len(raw_lines) and not text.endswith("\n"):  # a write cut short: left out
                    log.warning("session %s: its last line is incomplete (a torn write) and is left out", session_id)
                    break
                raise SessionCorrupt(f"Session {session_id} cannot be read: line {number}: {exc}") from None
            lines.append(line)
        body = bytearray("".join(f"{line}\n" for line in lines).encode("utf-8"))
        return Session(session_id, path, metadata, messages, body, stamp)

    def save(self, session: Session, durable: bool = True) -> None:
        """Write the whole session atomically: temp file, fsync (unless not ``durable``), os.replace."""
        session.metadata["message_count"] = len(session.messages)
        head = json.dumps(session.metadata, ensure_ascii=False, separators=(",", ":"))
        atomic.write_bytes(session.path, f"{head}\n".encode("utf-8"), session.body, sync=durable)
        session.stamp = _stamp(session.path)
        self._remember(session)

    def append(self, session: Session, *messages: Message) -> None:
        for message in messages:
            session.messages.append(message)
            session.body += f"{message.dumps()}\n".encode("utf-8")
        self.save(session)

    def replace_messages(self, session: Session, messages: list[Message]) -> None:
        session.messages = list(messages)
        session.body = bytearray("".join(f"{m.dumps()}\n" for m in session.messages).encode("utf-8"))
        self.save(session)

    def delete(self, session_id: str) -> None:
        """Remove the session's file and its backups (``backup``).

        Raises:
            SessionNotFound: the file is gone already.
        """
        path = self.path(session_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise SessionNotFound(session_id) from None
        self._forget(session_id)
        for backup in self.dir.glob(f"{glob.escape(path.name)}.*.bak"):
            backup.unlink(missing_ok=True)

    def discard(self, session: Session) -> bool:
        """Delete a session just created, unless its file changed since (someone else wrote it); True if deleted."""
        try:
            if _stamp(session.path) != session.stamp:
                return False
            session.path.unlink()
        except FileNotFoundError:
            return False
        self._forget(session.id)
        log.info("session discarded id=%s", session.id)
        return True

    def backup(self, session: Session) -> str:
        """Copy the session file beside itself as ``<id>.jsonl.<time>.bak`` (goose lists only ``*.jsonl``); its name."""
        target = session.path.with_name(f"{session.path.name}.{time.strftime('%Y%m%d_%H%M%S')}.bak")
        n = 1
        while target.exists():
            n += 1
            target = session.path.with_name(f"{session.path.name}.{time.strftime('%Y%m%d_%H%M%S')}_{n}.bak")
        shutil.copy2(session.path, target)
        return target.name

    def forget(self, session_id: str) -> None:
        """Drop this process's cached copy (the file is untouched)."""
        self._forget(session_id)

    def file_bytes(self, session: Session) -> bytes:
        """The session's goose file as it is on disk (an export)."""
        return session.path.read_bytes()

    def message_counts(self, session_ids: Iterable[str]) -> dict[str, int]:
        """Messages in each session, from its metadata line (no full parse); sessions gone meanwhile are left out."""
        counts: dict[str, int] = {}
        for session_id in session_ids:
            try:
                count = self.read_metadata(session_id).get("message_count")
            except (SessionNotFound, SessionCorrupt):
                continue  # deleted or being replaced meanwhile: not a session right now
            counts[session_id] = count if isinstance(count, int) else 0
        return counts

    def read_metadata(self, session_id: str) -> dict[str, Any]:
        """Line 1 of the file only: cheap for listings.

        Raises:
            SessionNotFound: no such session. SessionCorrupt: line 1 is not a JSON object.
        """
        try:
            with open(self.path(session_id), encoding="utf-8") as fh:
                head = fh.readline()
        except FileNotFoundError:
            raise SessionNotFound(session_id) from None
        if not head.strip():
            return new_metadata("")
        try:
            metadata = json.loads(head)
        except ValueError as exc:
            raise SessionCorrupt(f"Session {session_id} cannot be read: line 1: {exc}") from None
        if not isinstance(metadata, dict):
            raise SessionCorrupt(f"Session {session_id} cannot be read: line 1 is not an object")
        return metadata

    # --- listing ---------------------------------------------------------------

    def list_ids(self) -> list[tuple[str, float]]:
        """(id, modified time) of every session, newest first."""
        entries = []
        with os.scandir(self.dir) as it:
            for entry in it:
                name = entry.name
                if name.endswith(".jsonl") and SESSION_ID_RE.fullmatch(name[:-6]) and entry.is_file():
                    try:
                        entries.append((name[:-6], entry.stat().st_mtime))
                    except FileNotFoundError:
                        continue
        entries.sort(key=lambda e: e[1], reverse=True)
        return entries

    # --- locking -------------------------------------------------------------

    @contextmanager
    def lock(self, session_id: str) -> Iterator[None]:
        """Hold the session for one turn, across threads and processes.

        Raises:
            SessionBusy: another turn holds it.
        """
        with self.acquire(session_id):
            yield

    def remove_lock(self, held: flock.HeldLock) -> None:
        """Delete the lock file of a session being deleted, whose lock ``held`` is (then let go of)."""
        flock.remove(held)

    def acquire(self, session_id: str) -> flock.HeldLock:
        """Take the session's lock without waiting; release it from any thread of this process.

        The lock is an ``flock``: the OS drops it when its process dies, so a
        crash never leaves a session locked.

        Raises:
            SessionBusy: another turn holds it.
        """
        try:
            return flock.acquire(self.data.session_lock(self.check_id(session_id)), timeout=0)
        except flock.LockTimeout:
            raise SessionBusy(f"Session {session_id} is busy with another turn; retry when it finishes",
                              headers={"Retry-After": "1"}) from None

    # --- cache -------------------------------------------------------------------

    def _remember(self, session: Session) -> None:
        with self._cache_lock:
            self._cache[session.id] = session
            self._cache.move_to_end(session.id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, session_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(session_id, None)


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _stamp_fd(fd: int) -> tuple[int, int, int]:
    st = os.fstat(fd)
    return (st.st_ino, st.st_size, st.st_mtime_ns)
