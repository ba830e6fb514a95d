"""The HTTP under :class:`goose_api.client.GooseClient`: requests, error answers, and run streams.

``HttpClient`` sends one request and turns a transport failure into
``ConnectionFailed`` and an error answer into its ``GooseApiError``. With
``idempotent`` a POST carries an ``Idempotency-Key`` and is sent again with it
when the connection drops before the answer. It follows a run's events,
reconnecting with ``Last-Event-ID`` after each drop (a bounded number of times
in a row, with backoff), and a queued run's once it starts. What the requests
mean is the client's business.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping, Self

import requests

from goose_api.client.errors import ConnectionFailed, GooseApiError, NotFoundError, error_from_answer, error_from_event
from goose_api.client.events import ErrorEvent, Event, SseField, parse_sse

DEFAULT_URL = "http://127.0.0.1:8080"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_RECONNECT_DELAY = 30.0
QUEUE_LOOK = 0.1  # seconds between looks at a session being handed to its queue's next turn
ACTIVE_STATES = frozenset({"running", "waiting_approval"})
DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def client_environment(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """The server URL and key from the environment: the one place the client reads it.

    ``GOOSE_API_URL`` (default ``http://127.0.0.1:8080``) and ``GOOSE_API_KEY``;
    without the latter, the key a local server generated for itself
    (``$XDG_DATA_HOME/goose-api/api_key``), when that file exists.
    """
    env = os.environ if environ is None else environ
    url = env.get("GOOSE_API_URL") or DEFAULT_URL
    key = env.get("GOOSE_API_KEY")
    if not key:
        data_home = Path(env.get("XDG_DATA_HOME") or Path(env.get("HOME") or Path.home()) / ".local" / "share")
        key_file = data_home / "goose-api" / "api_key"
        key = key_file.read_text().strip() if key_file.is_file() else None
    return url, key or None


class HttpClient:
    """The server's URL and key, the timeouts, and the ``requests`` session (see ``GooseClient``)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 30.0, *,
                 max_reconnects: int = 5, reconnect_delay: float | None = None, idempotent: bool = False,
                 session: requests.Session | None = None):
        env_url, env_key = client_environment() if base_url is None or api_key is None else (None, None)
        self.base_url = (base_url or env_url or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else env_key
        self.timeout = timeout
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.idempotent = idempotent
        self.http = session or requests.Session()
        if self.api_key:
            self.http.headers["x-api-key"] = self.api_key

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return json_of(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, *, stream: bool = False, timeout: Any = None,
              **kwargs: Any) -> requests.Response:
        """One request; transport failures become ConnectionFailed, error answers their GooseApiError."""
        try:
            response = self.http.request(method, self.base_url + path, stream=stream,
                                         timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"Cannot reach goose-api at {self.base_url}: {reason(exc)}",
                                   code="connection_failed") from exc
        if response.status_code >= 400:
            with response:
                raise error_from_answer(response.status_code, json_of(response, strict=False),
                                        response.headers, response.text)
        return response

    def _post(self, path: str, body: Any, key: str | None, *, stream: bool = False,
              headers: Mapping[str, str] | None = None, timeout: Any = None) -> requests.Response:
        """A POST with its Idempotency-Key; with ``idempotent``, sent again with that key after a drop."""
        key = key or (str(uuid.uuid4()) if self.idempotent else None)
        headers = {**(headers or {}), **({IDEMPOTENCY_HEADER: key} if key else {})}
        failures = 0
        while True:
            try:
                return self._send("POST", path, json=body, headers=headers, stream=stream, timeout=timeout)
            except ConnectionFailed as exc:
                failures += 1
                if not self.idempotent or not isinstance(exc.__cause__, DROPPED) or failures > self.max_reconnects:
                    raise
            base = self.reconnect_delay if self.reconnect_delay is not None else 1.0
            time.sleep(min(MAX_RECONNECT_DELAY, base * 2 ** (failures - 1)))

    def _follow(self, session_id: str, run_id: str | None, after: int | None, response: requests.Response | None,
                deadline: float | None = None, raise_errors: bool = True) -> Iterator[Event]:
        """A run's events from ``response`` and then, after each drop, from a reconnect at the last id.

        ``raise_errors=False``: an ``error`` event is yielded, not raised (a run ahead in the queue).
        """
        sse, failures, last_id = SseField(), 0, after
        while True:
            try:
                if response is None:
                    response = self._open_run(session_id, run_id, last_id, deadline)
                with response:
                    for event in parse_sse(response.iter_lines(decode_unicode=True), sse):
                        failures, last_id = 0, event.id if event.id is not None else last_id
                        if isinstance(event, ErrorEvent) and raise_errors:
                            raise error_from_event(event.data)
                        yield event
                        if event.terminal:
                            return
                cause = "the stream ended before the run did"
            except (requests.RequestException, ConnectionFailed) as exc:
                cause = reason(exc)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"The run was still going after the time given ({run_id or session_id})")
            response, failures = None, failures + 1
            if failures > self.max_reconnects:
                raise ConnectionFailed(f"Lost the event stream of session {session_id} and could not get it back "
                                       f"after {self.max_reconnects} tries: {cause}", code="stream_lost")
            base = self.reconnect_delay if self.reconnect_delay is not None else (sse.retry or 1.0)
            time.sleep(min(MAX_RECONNECT_DELAY, base * 2 ** (failures - 1)))

    def _open_run(self, session_id: str, run_id: str | None, last_id: int | None,
                  deadline: float | None) -> requests.Response:
        """The run's events; a queued run's once it has started (it has none before)."""
        try:
            return self._open_events(session_id, run_id, last_id, deadline)
        except NotFoundError:
            if run_id is None or not self._await_start(session_id, run_id, deadline):
                raise
        return self._open_events(session_id, run_id, last_id, deadline)

    def _await_start(self, session_id: str, run_id: str, deadline: float | None) -> bool:
        """Wait until a queued run has started, following each run ahead of it to its end.

        Returns False when ``run_id`` is not queued on the session.
        """
        queued = False
        while True:
            detail = self._json("GET", f"/session/{session_id}")
            if run_id not in {q["run_id"] for q in detail.get("queued_runs") or []}:
                return queued
            queued = True
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Run {run_id} was still queued after the time given")
            if detail.get("state") in ACTIVE_STATES:
                for _ in self._follow(session_id, detail["run_id"], None, None, deadline, raise_errors=False):
                    pass
            else:
                time.sleep(QUEUE_LOOK)

    def _open_events(self, session_id: str, run_id: str | None, last_id: int | None,
                     deadline: float | None) -> requests.Response:
        read = self.timeout if deadline is None else max(0.01, min(self.timeout, deadline - time.monotonic()))
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        return self._send("GET", f"/session/{session_id}/events", params=None if run_id is None else {"run_id": run_id},
                          headers=headers, stream=True, timeout=(self.timeout, read))


def json_of(response: requests.Response, strict: bool = True) -> Any:
    try:
        return response.json()
    except ValueError:
        if strict:
            raise GooseApiError(f"The server answered {response.status_code} without JSON: "
                                f"{response.text[:200]!r}", status=response.status_code, code="invalid_answer")
        return None


def reason(exc: Exception) -> str:
    """A transport failure in a few words (requests' messages nest urllib3's several levels deep)."""
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "Connection reset",
                   "Response ended prematurely", "IncompleteRead", "Remote end closed connection"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__
