"""What happens around every request: request id, key check, content type, access log."""

from __future__ import annotations

import io
import json
import logging
import re
import random
import time

from flask import Flask, Request, g, request

from goose_api.auth import presented_key
from goose_api.errors import UnsupportedMediaType
from goose_api.services import Services

log = logging.getLogger("goose_api.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))


def register_request_hooks(app: Flask, services: Services, public_endpoints: frozenset[str]) -> None:
    # Every request runs these: they reach the request and ``g`` once each (every
    # access through Flask's proxies costs a context lookup) and avoid work a bare
    # Flask app would not do, so the API's own overhead stays small (bench/http_overhead.py).
    @app.before_request
    def _begin():
        req, state = request._get_current_object(), g._get_current_object()
        state.started = time.monotonic()
        given = req.headers.get("X-Request-ID", "")
        state.request_id = given if given and REQUEST_ID_RE.match(given) else new_request_id()
        state.client = None
        if req.endpoint not in public_endpoints and req.method != "OPTIONS":
            state.client = services.keys.identify(presented_key(req.headers))
        if req.method in BODY_METHODS and _has_body(req) and not req.is_json:
            raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json")

    @app.after_request
    def _finish(response):
        req, state = request._get_current_object(), g._get_current_object()
        headers = response.headers
        headers["X-Request-ID"] = state.get("request_id", "")
        for name, value in DEFAULT_HEADERS:
            if name not in headers:
                headers[name] = value
        client = state.get("client")
        log.info("request id=%s method=%s path=%s status=%s ms=%.1f client=%s", state.get("request_id"),
                 req.method, req.path, response.status_code,
                 (time.monotonic() - state.get("started", time.monotonic())) * 1000,
                 client.name if client else "-")
        return response


def new_request_id() -> str:
    """32 random hex digits, like ``uuid4().hex``, without a system call (``random`` reseeds after a fork).

    An id only correlates log lines; it guards nothing, so it needs no secure randomness.
    """
    return f"{random.getrandbits(128):032x}"


def _has_body(req: Request) -> bool:
    return bool(req.content_length) or req.headers.get("Transfer-Encoding", "").lower() == "chunked" \
        or bool(req.mimetype)


class ChunkedBodyLimit:
    """WSGI middleware: hold a chunked body (no Content-Length) to ``max_body_bytes`` too.

    Werkzeug stops reading a chunked body at the limit but hands on the cut-off
    prefix, which would surface as "invalid JSON". This reads such a body up
    front, answers 413 when it is over the limit, and otherwise passes it on
    with a Content-Length.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = _read_at_most(environ["wsgi.input"], self.limit + 1)
            if len(body) > self.limit:
                payload = json.dumps({"status": "error", "error": "payload_too_large",
                                      "message": f"The request body is larger than {self.limit} bytes"}).encode()
                start_response("413 Request Entity Too Large",
                               [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                                ("Connection", "close")])
                return [payload]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _read_at_most(stream, size: int) -> bytes:
    parts, total = [], 0
    while total < size:
        chunk = stream.read(min(65536, size - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)
