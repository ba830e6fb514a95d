"""Moving sessions: fork one, export one, import one.

Formats:
  - ``goose-jsonl``: the goose v1.0 session file as it is (line 1 metadata, a message a line).
  - ``json``: goose's ``Session`` JSON (``session_manager.rs`` ``export_session``): ``id``,
    ``working_dir``, ``name``, ``created_at``, ``updated_at``, the token fields, ``conversation``
    (the messages), ``message_count``.
  - ``markdown``: for people (export only).
  - ``goose-sqlite``: a ``sessions.db`` holding the one session (``goose_db.py``); on import the
    file comes base64-encoded in the JSON body.

Every imported message is validated as goose's format, and each message must
answer the tool requests of the one before it. An import is bounded: at most
``max_bytes`` (the JSONL text, the JSON, the sessions.db file) and
``max_messages`` messages, JSON nested no deeper than ``bounded_json.MAX_DEPTH``;
a sessions.db is read as ``goose_db.read`` bounds it. A fork copies the first
``at_message`` messages; it never splits a tool request from its answer (such
an ``at_message`` is refused, naming the two cuts that work). New sessions get
a goose-style id unless one is given (409 if taken), and belong to the caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from goose_api.auth import Client
from goose_api.conversation import ACCUMULATED_FIELDS, TOKEN_FIELDS, Message, MessageFormatError, check_pairs
from goose_api.errors import BadRequest
from goose_api.sessions import goose_db
from goose_api.sessions.access import SessionAccess
from goose_api.sessions.markdown import markdown
from goose_api.sessions.store import I32_MAX, Session, SessionFormatError, parse_jsonl

EXPORT_FORMATS = ("goose-jsonl", "json", "markdown", "goose-sqlite")
IMPORT_FORMATS = ("goose-jsonl", "json", "goose-sqlite")
TOKEN_KEYS = TOKEN_FIELDS + ACCUMULATED_FIELDS


@dataclass(frozen=True)
class Export:
    body: bytes
    mimetype: str
    filename: str


@dataclass(frozen=True)
class Created:
    """A session made by a fork or an import."""

    session_id: str
    message_count: int
    working_dir: str
    source_id: str | None = None    # a fork: the session it copies
    source_count: int | None = None  # a fork: how many messages that one has


class SessionTransfer:
    def __init__(self, access: SessionAccess, check_working_dir: Callable[..., str], default_working_dir: str,
                 scratch: Path, *, max_bytes: int = goose_db.MAX_BYTES, max_messages: int = 100_000):
        self.access = access
        self.store = access.store
        self.check_working_dir = check_working_dir
        self.default_working_dir = default_working_dir
        self.scratch = Path(scratch)
        self.max_bytes = max_bytes
        self.max_messages = max_messages

    # --- fork ------------------------------------------------------------------------

    def fork(self, session_id: str, at_message: int | None, new_id: str | None, owner: Client) -> Created:
        """Copy the first ``at_message`` messages (default: all, less an unanswered last tool request).

        Raises:
            NotFound: no such session. BadRequest: the cut splits a tool request from its answer.
            Conflict: ``new_id`` is taken.
        """
        source = self.store.load(session_id)
        messages = source.messages
        if at_message is None:
            count = len(messages) - (1 if messages and messages[-1].tool_requests() else 0)
        else:
            if at_message > len(messages):
                raise BadRequest(f"at_message {at_message} is past the end: session {session_id} has "
                                 f"{len(messages)} messages")
            count = at_message
            if count and messages[count - 1].tool_requests():
                raise BadRequest(f"at_message {count} would split the tool request in message {count} from its "
                                 f"answer in message {count + 1}; fork at {count - 1}"
                                 + (f" or {count + 1}" if count < len(messages) else ""))
        meta = {"working_dir": source.working_dir, "description": source.metadata.get("description") or ""}
        copy = self._create(new_id, meta, messages[:count], owner)
        return Created(copy.id, count, copy.working_dir, session_id, len(messages))

    # --- export ----------------------------------------------------------------------

    def export(self, session_id: str, fmt: str) -> Export:
        """Raises: NotFound: no such session."""
        session = self.store.load(session_id)
        if fmt == "goose-jsonl":
            return Export(self.store.file_bytes(session), "application/jsonl", f"{session.id}.jsonl")
        if fmt == "json":
            body = json.dumps(goose_json(session), ensure_ascii=False, indent=2) + "\n"
            return Export(body.encode(), "application/json", f"{session.id}.json")
        if fmt == "markdown":
            return Export(markdown(session).encode(), "text/markdown", f"{session.id}.md")
        data = goose_db.to_bytes(_db_session(session), self.scratch)
        return Export(data, "application/vnd.sqlite3", f"{session.id}.sessions.db")

    # --- import ----------------------------------------------------------------------

    def import_session(self, fmt: str, data: Any, *, session_id: str | None, working_dir: str | None,
                       source_id: str | None, owner: Client) -> Created:
        """Validate and store a session sent in ``fmt`` (``owner`` without admin: its working dir is confined).

        Raises:
            BadRequest: the data is not a valid session in that format. Conflict: ``session_id`` is taken.
        """
        metadata, raw_messages = self._parse(fmt, data, source_id)
        if len(raw_messages) > self.max_messages:
            raise BadRequest(f"the session has {len(raw_messages)} messages, more than the {self.max_messages} "
                             "an import may have (import_max_messages)")
        messages = []
        for number, raw in enumerate(raw_messages, start=1):
            try:
                messages.append(Message.from_json(raw))
            except MessageFormatError as exc:
                raise BadRequest(f"message {number} is not a goose message: {exc}") from None
        try:
            check_pairs(messages)
        except MessageFormatError as exc:
            raise BadRequest(f"the messages are not a goose history: {exc}") from None
        metadata = _checked_metadata(metadata)
        metadata["working_dir"] = self._working_dir(working_dir, metadata["working_dir"], confined=not owner.admin)
        session = self._create(session_id, metadata, messages, owner)
        return Created(session.id, len(messages), session.working_dir)

    def _parse(self, fmt: str, data: Any, source_id: str | None) -> tuple[Any, list[Any]]:
        if fmt == "goose-jsonl":
            if not isinstance(data, str):
                raise BadRequest("data must be the JSONL file's text for format goose-jsonl")
            self._check_size(len(data.encode("utf-8")))
            if data.count("\n") > self.max_messages + 1:
                raise BadRequest(f"the JSONL has more than {self.max_messages + 1} lines, the most an import may "
                                 "have (a metadata line and import_max_messages messages)")
            try:
                return parse_jsonl(data)
            except SessionFormatError as exc:
                raise BadRequest(str(exc)) from None
        if fmt == "json":
            if not isinstance(data, dict):
                raise BadRequest("data must be a goose Session JSON object for format json")
            self._check_size(len(json.dumps(data, ensure_ascii=False).encode("utf-8")))
            conversation = data.get("conversation") or []
            if isinstance(conversation, dict):
                conversation = conversation.get("messages") or []
            if not isinstance(conversation, list):
                raise BadRequest("conversation must be a list of goose messages")
            return {**data, "description": data.get("name") or data.get("description") or ""}, conversation
        return self._parse_db(data, source_id)

    def _parse_db(self, data: Any, source_id: str | None) -> tuple[Any, list[Any]]:
        try:
            raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            raise BadRequest("data must be the sessions.db file, base64-encoded, for format goose-sqlite")
        self._check_size(len(raw))
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.scratch, prefix="import-", suffix=".db") as file:
            file.write(raw)
            file.flush()
            try:
                found = goose_db.read(Path(file.name), source_id, self.max_bytes, self.max_messages)
            except goose_db.GooseDbError as exc:
                raise BadRequest(f"cannot import the sessions.db: {exc}") from None
            except ValueError as exc:  # a content_json that is not JSON
                raise BadRequest(f"cannot import the sessions.db: a message is not JSON: {exc}") from None
        return found.metadata, found.messages

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise BadRequest(f"the session is {size} bytes, more than the {self.max_bytes} an import may have "
                             "(import_max_bytes)")

    def _working_dir(self, given: str | None, imported: str, *, confined: bool) -> str:
        """The one asked for (checked), else the session's own if usable here, else the default."""
        if given:
            return self.check_working_dir(given, confined=confined)
        try:
            return self.check_working_dir(imported, confined=confined) if imported else self.default_working_dir
        except BadRequest:
            return self.default_working_dir  # another machine's directory: the answer shows the one used

    def _create(self, session_id: str | None, metadata: dict[str, Any], messages: list[Message],
                owner: Client) -> Session:
        session = self.access.create(session_id, metadata["working_dir"], metadata["description"], owner)
        try:
            session.metadata.update({key: metadata.get(key) for key in ("schedule_id", *TOKEN_KEYS)})
            self.store.replace_messages(session, messages)
        except BaseException:
            self.access.discard(session)
            raise
        return session


def _checked_metadata(meta: Any) -> dict[str, Any]:
    """goose's metadata fields, type-checked (extra fields are dropped: the file stays goose's)."""
    if not isinstance(meta, dict):
        raise BadRequest("the session metadata (JSONL line 1) must be a JSON object")
    for key in ("working_dir", "description"):
        if not isinstance(meta.get(key, ""), str):
            raise BadRequest(f"metadata {key} must be a string")
    for key in TOKEN_KEYS:
        value = meta.get(key)
        if value is not None and (type(value) is not int or not 0 <= value <= I32_MAX):
            raise BadRequest(f"metadata {key} must be null or a whole number from 0 to {I32_MAX}")
    schedule = meta.get("schedule_id")
    return {"working_dir": meta.get("working_dir") or "", "description": " ".join(
        str(meta.get("description") or "").split()[:4])[:100],
            "schedule_id": schedule if isinstance(schedule, str) else None, **{k: meta.get(k) for k in TOKEN_KEYS}}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _times(session: Session) -> tuple[float, float]:
    updated = session.updated
    return (float(session.messages[0].created) if session.messages else updated), updated


def goose_json(session: Session) -> dict[str, Any]:
    """goose's ``Session`` JSON for a session (as ``export_session`` writes it)."""
    created, updated = _times(session)
    meta = session.metadata
    return {"id": session.id, "working_dir": session.working_dir, "name": meta.get("description") or "",
            "user_set_name": False, "session_type": "user", "created_at": _iso(created), "updated_at": _iso(updated),
            "extension_data": {}, **{key: meta.get(key) for key in TOKEN_KEYS},
            "schedule_id": meta.get("schedule_id"), "recipe": None, "user_recipe_values": None,
            "conversation": [m.to_json() for m in session.messages], "message_count": len(session.messages)}


def _db_session(session: Session) -> goose_db.DbSession:
    created, updated = _times(session)
    return goose_db.DbSession(session.id, dict(session.metadata), [m.to_json() for m in session.messages],
                              created, updated)
