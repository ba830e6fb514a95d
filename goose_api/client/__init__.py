"""A Python client for goose-api: the common things one line each.

    from goose_api.client import GooseClient

    client = GooseClient()                       # GOOSE_API_URL, GOOSE_API_KEY
    turn = client.start("List the files here")   # blocks until the answer
    print(turn.response)
    for event in client.stream("And now the tests?", turn.session_id):
        ...                                      # MessageEvent, ToolRequestEvent, ..., DoneEvent

Streams survive a dropped connection: the client reconnects to the run's
events with ``Last-Event-ID`` (a bounded number of times, with backoff), so
every event arrives once and in order. With ``idempotent=True`` a POST whose
connection drops before its answer is sent again with the same
``Idempotency-Key``, which the server answers from the first request's run.
Errors are the classes of ``goose_api.client.errors``; answers and events
those of ``goose_api.client.events``.
"""

from __future__ import annotations

import base64
import json
import math
import time
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit

import requests

from goose_api.client.errors import (
    AuthError,
    ConflictError,
    ConnectionFailed,
    ExtensionError,
    GooseApiError,
    NotFoundError,
    NotReadyError,
    ProviderError,
    RateLimitError,
    RunInterruptedError,
    ServerError,
    SessionBusyError,
    UpstreamError,
    ValidationError,
)
from goose_api.client.events import (
    Accepted,
    ApprovalRequiredEvent,
    DoneEvent,
    Event,
    EventStream,
    MessageEvent,
    NotificationEvent,
    ToolRequestEvent,
    ToolResponseEvent,
    Turn,
)
from goose_api.client.http import HttpClient, client_environment, json_of

__all__ = [  # one import point: the client, what it answers and what it raises
    "GooseClient", "EventStream", "client_environment", "Turn", "Accepted", "Event", "MessageEvent",
    "ToolRequestEvent", "ToolResponseEvent", "ApprovalRequiredEvent", "NotificationEvent", "DoneEvent",
    "GooseApiError", "ConnectionFailed", "AuthError", "NotFoundError", "ConflictError", "SessionBusyError",
    "ValidationError", "RateLimitError", "UpstreamError", "ProviderError", "ExtensionError", "NotReadyError",
    "RunInterruptedError", "ServerError", "IF_BUSY", "EXPORT_FORMATS", "IMPORT_FORMATS",
]

# The API's values for a reply's if_busy and the transfer formats. The client imports no server
# code, so it keeps its own copy; tests/client/test_vocabulary.py checks they are the server's.
IF_BUSY = ("reject", "enqueue", "interrupt")
EXPORT_FORMATS = ("goose-jsonl", "json", "markdown", "goose-sqlite")
IMPORT_FORMATS = ("goose-jsonl", "json", "goose-sqlite")

SESSIONS_PAGE = 200
BINARY_EXPORTS = frozenset({"goose-sqlite"})


class GooseClient(HttpClient):
    """goose-api over HTTP (``requests``).

    The turn methods take ``idempotency_key`` (sent as ``Idempotency-Key``: a repeat with the
    same key is answered from the first request, its stored answer or its run, and never runs
    twice; the same key with another request is a 422 ``ValidationError``) and, but for
    ``confirm``, ``webhook`` (an http(s) URL the run's final event is POSTed to, signed).
    Replies take ``if_busy``, what to do when a turn runs on the session: ``reject``
    (``SessionBusyError``, the server's default), ``enqueue`` (``Accepted`` with status
    ``queued``; ``wait``, ``events`` and ``stream`` follow the turn once it starts) or
    ``interrupt`` (cancel the running turn, then run this one).

    Args:
        base_url: e.g. ``http://127.0.0.1:8080``; default ``GOOSE_API_URL``.
        api_key: sent as ``x-api-key``; default ``GOOSE_API_KEY``.
        timeout: seconds to wait for an answer (a stream: for its next bytes; the server
            sends a keep-alive at least every 15 s). A blocking turn waits as long as the turn
            takes, unless ``wait`` caps it.
        max_reconnects: reconnects in a row a stream may make before ``ConnectionFailed``.
        reconnect_delay: seconds before the first reconnect (doubling after each failure);
            default: the delay the server's stream asks for.
        idempotent: send every turn, fork and import with an ``Idempotency-Key`` (a new UUID unless
            the call gives one) and, when the connection drops before the answer, send it again with
            the same key (up to ``max_reconnects`` times): the server answers it from the first
            request's run, so a retry never starts a second one. Without it a call's
            ``idempotency_key`` is sent once.
    """

    # --- turns ---------------------------------------------------------------------------

    def start(self, prompt: str, session_id: str | None = None, *, working_dir: str | None = None,
              background: bool = False, wait: float | None = None, webhook: str | None = None,
              idempotency_key: str | None = None) -> Turn | Accepted:
        """Start a session with a prompt; the answer, or ``Accepted`` when run in the ``background``
        (or still running after ``wait`` seconds).

        Raises:
            GooseApiError: a subclass by fault (``SessionBusyError``, ``ProviderError``, ...).
        """
        body = _without_none(prompt=prompt, session_id=session_id, working_dir=working_dir, webhook=webhook)
        return self._turn("/session/start", body, background, wait, idempotency_key)

    def reply(self, prompt: str, session_id: str | None = None, *, background: bool = False,
              wait: float | None = None, if_busy: str | None = None, webhook: str | None = None,
              idempotency_key: str | None = None) -> Turn | Accepted:
        """Send a prompt to a session (without ``session_id``: the most recently active one).

        Raises:
            GooseApiError: a subclass by fault (``NotFoundError``, ``SessionBusyError``, ...).
        """
        body = _without_none(prompt=prompt, session_id=session_id, if_busy=if_busy, webhook=webhook)
        return self._turn("/session/reply", body, background, wait, idempotency_key)

    def confirm(self, session_id: str, call_id: str, action: str = "allow_once", *, background: bool = False,
                wait: float | None = None, idempotency_key: str | None = None) -> Turn | Accepted:
        """Decide on a pending tool call (``allow_once``, ``always_allow``, ``deny``); by default waits
        until the turn ends or asks again.

        Raises:
            GooseApiError: ``ConflictError`` when nothing waits for that call, ``ValidationError``, ...
        """
        return self._turn(f"/session/{session_id}/confirm", {"id": call_id, "action": action}, background, wait,
                          idempotency_key)

    def resume(self, session_id: str, *, background: bool = False, wait: float | None = None,
               webhook: str | None = None, idempotency_key: str | None = None) -> Turn | Accepted:
        """Drive the session's interrupted run on from its last saved step; answered as ``confirm`` is
        (``Turn`` with ``data["resumed_from"]``, or ``waiting_approval``, or ``Accepted``).

        Raises:
            GooseApiError: ``ConflictError`` (``not_resumable``) when its last run was not interrupted, ...
        """
        return self._turn(f"/session/{session_id}/resume", _without_none(webhook=webhook), background, wait,
                          idempotency_key)

    def stream(self, prompt: str, session_id: str | None = None, *, new: bool | None = None,
               working_dir: str | None = None, if_busy: str | None = None, webhook: str | None = None,
               idempotency_key: str | None = None) -> EventStream:
        """Send a prompt and yield the run's events as they happen, ending with a ``DoneEvent``.

        Without ``session_id`` a new session starts; with one, the prompt is a reply to it
        (``new=True`` starts a session with that id; ``new=False`` without an id replies to
        the most recently active session). A reply queued behind a busy session (``if_busy``)
        yields its events once it starts; ``queued`` says so.

        Raises:
            GooseApiError: the request failed, or the run ended with an error (raised as the
                blocking request would have raised it). ConnectionFailed: the stream could not
                be re-established within ``max_reconnects``.
        """
        new = session_id is None if new is None else new
        path = "/session/start" if new else "/session/reply"
        body = _without_none(prompt=prompt, session_id=session_id, stream=True, if_busy=if_busy, webhook=webhook,
                             working_dir=working_dir if new else None)
        response = self._post(path, body, idempotency_key, stream=True)
        if response.status_code == 202:
            with response:
                queued = Accepted.from_json(json_of(response))
            events = self._follow(queued.session_id, queued.run_id, None, None)
            return EventStream(events, queued.session_id, queued.run_id, queued=True)
        session_id, run_id = _stream_location(response, session_id)
        return EventStream(self._follow(session_id, run_id, None, response), session_id, run_id)

    def events(self, session_id: str, after: int | None = None, run_id: str | None = None) -> EventStream:
        """The events of the session's current or last run (or ``run_id``), those after ``after`` only.

        A queued ``run_id`` is followed once it starts.

        Raises:
            GooseApiError: as ``stream``.
        """
        response = self._open_run(session_id, run_id, after, None)
        return EventStream(self._follow(session_id, run_id, after, response), session_id, run_id)

    def wait(self, session_id: str, run_id: str, timeout: float | None = None) -> Turn:
        """Follow a background (or queued) run until it ends or waits for an approval; its answer.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            GooseApiError: the run ended with an error (as the blocking request would have raised it).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self._follow(session_id, run_id, None, None, deadline):
            if event.terminal:
                return Turn.from_json(event.data)
            if isinstance(event, ApprovalRequiredEvent):
                detail = self.session(session_id)
                if detail.get("run_id") == run_id and detail.get("state") == "waiting_approval":
                    return _waiting_turn(detail)
        raise ConnectionFailed("The event stream ended before the run did", code="stream_ended")

    def cancel(self, session_id: str) -> dict[str, Any]:
        """Stop the session's run at its next step; says what was cancelled (``ConflictError``: nothing runs)."""
        return self._json("POST", f"/session/{session_id}/cancel")

    # --- moving sessions -----------------------------------------------------------------

    def fork(self, session_id: str, at_message: int | None = None, *, new_session_id: str | None = None,
             idempotency_key: str | None = None) -> dict[str, Any]:
        """Copy a session (its first ``at_message`` messages) to a new one; ``session_id`` in the
        answer is the copy's.

        Raises:
            ValidationError: the cut splits a tool request from its answer (the message names the
                cuts that work). ConflictError: ``new_session_id`` is taken. NotFoundError.
        """
        body = _without_none(at_message=at_message, session_id=new_session_id)
        return json_of(self._post(f"/session/{session_id}/fork", body, idempotency_key))

    def export(self, session_id: str, format: str = "goose-jsonl") -> str | bytes:
        """The session as a file: text for ``goose-jsonl``, ``json`` and ``markdown``; the bytes of a
        ``sessions.db`` for ``goose-sqlite``. ``import_session`` takes it back as it is.

        Raises:
            NotFoundError: no such session. ValidationError: an unknown format.
        """
        body = self._send("GET", f"/session/{session_id}/export", params={"format": format}).content
        return body if format in BINARY_EXPORTS else body.decode("utf-8")

    def import_session(self, data: str | bytes | Mapping[str, Any], format: str = "goose-jsonl", *,
                       session_id: str | None = None, working_dir: str | None = None,
                       source_id: str | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """Store a session sent as an ``export`` gave it: ``goose-jsonl`` text, ``json`` (text or the
        object) or ``goose-sqlite`` bytes (``source_id`` picks a session of a database holding several).
        The answer has the new ``session_id``, ``message_count`` and the ``working_dir`` it got.

        Raises:
            ValidationError: not a valid session in that format (the message says where).
                ConflictError: ``session_id`` is taken.
        """
        if format in BINARY_EXPORTS:
            if not isinstance(data, bytes):
                raise TypeError(f"{format} data is the file's bytes")
            data = base64.b64encode(data).decode("ascii")
        elif isinstance(data, bytes):
            data = data.decode("utf-8")
        if format == "json" and isinstance(data, str):
            data = json.loads(data)
        body = _without_none(format=format, data=data, session_id=session_id, working_dir=working_dir,
                             source_id=source_id)
        return json_of(self._post("/sessions/import", body, idempotency_key))

    # --- sessions ------------------------------------------------------------------------

    def sessions(self, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """Sessions newest first (``id``, ``path``, ``modified``, ``metadata``); all of them without ``limit``."""
        found: list[dict[str, Any]] = []
        while limit is None or len(found) < limit:
            page_size = SESSIONS_PAGE if limit is None else min(SESSIONS_PAGE, limit - len(found))
            page = self._json("GET", "/sessions", params={"limit": page_size, "offset": offset + len(found)})
            found.extend(page["sessions"])
            if not page["sessions"] or offset + len(found) >= page["total"]:
                break
        return found

    def session(self, session_id: str, since: int | None = None) -> dict[str, Any]:
        """A session: metadata, run ``state``, ``pending_approvals``, ``messages`` (after the first ``since``)."""
        return self._json("GET", f"/session/{session_id}", params=_without_none(since=since))

    def delete(self, session_id: str) -> dict[str, Any]:
        """Delete a session (``ConflictError`` while a turn runs on it)."""
        return self._json("DELETE", f"/session/{session_id}")

    def end(self, session_id: str) -> dict[str, Any]:
        """Stop the session's run and free what the server holds for it; the history is kept."""
        return self._json("POST", "/session/end", json={"session_id": session_id})

    def summarize(self, session_id: str) -> str:
        """Replace the session's history with the model's summary; the summary."""
        return self._json("POST", "/session/summarize", json={"session_id": session_id})["message"]

    # --- extensions, provider, operations -------------------------------------------------

    def extensions(self) -> list[str]:
        """Names of the enabled extensions."""
        return self._json("GET", "/extensions/list")["extensions"]

    def extension_details(self) -> list[dict[str, Any]]:
        """Each extension's ``type``, ``status``, ``tools`` and ``last_error``."""
        return self._json("GET", "/extensions")["extensions"]

    def add_extension(self, config: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Add (or replace) an extension: goose's ExtensionConfig, as a dict or as keywords, e.g.
        ``add_extension(type="stdio", name="time", cmd="uvx", args=["mcp-server-time"])``.

        Raises:
            ValidationError: a bad config. ExtensionError: the server did not start. AuthError (403):
                a command outside the server's ``extension_commands``.
        """
        self._json("POST", "/extensions/add", json={**(config or {}), **fields})

    def remove_extension(self, name: str) -> None:
        """Remove an extension and stop its server (``NotFoundError`` if there is none by that name)."""
        self._json("POST", "/extensions/remove", json=name)

    def provider(self) -> dict[str, Any]:
        """``{"provider", "model", "configured"}``."""
        return self._json("GET", "/provider/config")

    def set_provider(self, provider: str, model: str | None = None) -> dict[str, Any]:
        """Switch provider (and model; default: the provider's) for every worker."""
        return self._json("POST", "/provider/config", json=_without_none(provider=provider, model=model))

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def ready(self) -> dict[str, Any]:
        """Every readiness check (``NotReadyError`` lists the failing ones in its message and ``body``)."""
        return self._json("GET", "/ready")

    # --- transport -----------------------------------------------------------------------

    def _turn(self, path: str, body: dict[str, Any], background: bool, wait: float | None,
              key: str | None) -> Turn | Accepted:
        headers = {"Prefer": f"wait={math.ceil(wait)}"} if wait is not None and not background else {}
        read_timeout = (wait + self.timeout) if wait is not None else None
        if background:
            body = {**body, "async": True}
            read_timeout = self.timeout
        response = self._post(path, body, key, headers=headers, timeout=(self.timeout, read_timeout))
        data = json_of(response)
        return Accepted.from_json(data) if response.status_code == 202 else Turn.from_json(data)


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _stream_location(response: requests.Response, session_id: str | None) -> tuple[str, str | None]:
    """The session and run a streamed turn answers for, from its ``Content-Location``."""
    location = urlsplit(response.headers.get("Content-Location", ""))
    parts = location.path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "session" and parts[2] == "events":
        return parts[1], (parse_qs(location.query).get("run_id") or [None])[0]
    if session_id is None:
        response.close()
        raise GooseApiError("The server's stream did not say which session it is for (Content-Location)",
                            status=response.status_code, code="invalid_answer")
    return session_id, None


def _waiting_turn(detail: Mapping[str, Any]) -> Turn:
    pending = detail.get("pending_approvals") or []
    names = ", ".join(sorted({str(p.get("tool") or "?") for p in pending}))
    return Turn(status="waiting_approval", session_id=detail["session_id"], run_id=detail.get("run_id"),
                response="", message=f"Waiting for approval of {names}", pending_approvals=list(pending),
                data=dict(detail))
