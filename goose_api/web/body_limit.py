"""Request bodies over ``max_body_bytes``: a 413 the client can read, answered before the app runs.

Refusing a body is easy; making sure the client reads the refusal is not. A
client still sending when the server closes the connection gets a reset, and
with it a broken pipe instead of the answer (gunicorn reads at most 64 KiB of
an unread body before it closes). So:

- a client that sent ``Expect: 100-continue`` waits for permission before it
  sends the body: it gets the 413 instead, and sends nothing (gunicorn would
  grant the 100 itself before the app runs; its ``pre_request`` hook in
  ``ops/gunicorn_config.py`` stops that for a body declared over the limit);
- any other client is sending already: the 413 is written first, then up to
  ``DRAIN_BYTES`` of the body are read and dropped (for ``DRAIN_SECONDS`` at
  most), so that a client sending a body of a sane size finishes and reads
  the answer; past either bound the connection is closed;
- a chunked body declares no length: it is read up to the limit and, over it,
  answered and drained the same way; under it, passed on with a Content-Length.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from typing import Any, Iterator

from goose_api.web.errors import too_large_body
from goose_api.web.hooks import request_id_for
from goose_api.web.security import API_CSP, BASE_HEADERS

log = logging.getLogger("goose_api.access")

DRAIN_BYTES = 64 * 1024 * 1024  # of an oversized body read and dropped after the 413 (then the connection closes)
DRAIN_SECONDS = 10.0
CHUNK = 65536


class BodyLimit:
    """WSGI middleware answering 413 to a body over ``limit`` bytes (see the module's doc)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        declared = _content_length(environ)
        if declared is not None and declared > self.limit:
            expects_continue = environ.get("HTTP_EXPECT", "").lower() == "100-continue"
            return self._refuse(environ, start_response, 0 if expects_continue else declared)
        if declared is None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = _read_at_most(environ["wsgi.input"], self.limit + 1)
            if len(body) > self.limit:
                return self._refuse(environ, start_response, DRAIN_BYTES)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _refuse(self, environ, start_response, unread: int) -> "AnswerThenDrain":
        """The 413 (with the headers and the log line the app would have given it), then the drain."""
        payload = too_large_body(self.limit)
        request_id = request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response("413 Request Entity Too Large",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                        ("X-Request-ID", request_id), *BASE_HEADERS.items(), ("Content-Security-Policy", API_CSP)])
        fields = {"request_id": request_id, "method": environ.get("REQUEST_METHOD"),
                  "path": environ.get("PATH_INFO"), "status": 413, "client": "-"}
        log.info("request id=%(request_id)s method=%(method)s path=%(path)s status=%(status)s "
                 "client=%(client)s (body over max_body_bytes)", fields, extra={"fields": fields})
        return AnswerThenDrain(payload, environ, min(unread, DRAIN_BYTES))


class AnswerThenDrain:
    """A WSGI answer that, once written (``close``), reads and drops up to ``unread`` bytes of the body."""

    def __init__(self, payload: bytes, environ: dict[str, Any], unread: int):
        self.payload = payload
        self.stream = environ["wsgi.input"]
        self.sock = environ.get("gunicorn.socket")
        self.unread = unread

    def __iter__(self) -> Iterator[bytes]:
        yield self.payload

    def close(self) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        left = self.unread
        try:
            while left > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if isinstance(self.sock, socket.socket):
                    self.sock.settimeout(remaining)  # gunicorn sets its own again before it reads
                chunk = self.stream.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
        except (OSError, ValueError):
            return  # the client went away (or timed out): nothing more to read


def _content_length(environ) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _read_at_most(stream, size: int) -> bytes:
    parts, total = [], 0
    while total < size:
        chunk = stream.read(min(CHUNK, size - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)
