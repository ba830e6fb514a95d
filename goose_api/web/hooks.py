"""What happens around every request: request id, CORS, key check (throttled), admin-only routes,
content type, security headers, metrics and the access log."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import time

from flask import Flask, Request, g, request

from goose_api.auth import presented_key
from goose_api.errors import Forbidden, Unauthorized, UnsupportedMediaType
from goose_api.services import Services
from goose_api.web.api import needs_admin
from goose_api.web.security import API_CSP, BASE_HEADERS, Cors, security_headers
from goose_api.web.throttle import AuthThrottle

log = logging.getLogger("goose_api.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def register_request_hooks(app: Flask, services: Services, throttle: AuthThrottle,
                           public_endpoints: frozenset[str]) -> None:
    cors = Cors(services.settings.cors_origins)
    api_headers, docs_headers = security_headers(docs_page=False), security_headers(docs_page=True)

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
        preflight = cors.preflight(req)
        if preflight is not None:
            return preflight
        if req.endpoint not in public_endpoints and req.method != "OPTIONS":
            state.client = _identify(services, throttle, req)
            if not state.client.admin and needs_admin(app.view_functions.get(req.endpoint)):
                raise Forbidden(f"{req.method} {req.path} changes the server for every key: it needs an admin key")
        if req.method in BODY_METHODS and _has_body(req) and not req.is_json:
            raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json")
        return None

    @app.after_request
    def _finish(response):
        req, state = request._get_current_object(), g._get_current_object()
        headers = response.headers
        headers["X-Request-ID"] = state.get("request_id", "")
        headers.update(docs_headers if req.blueprint == "docs" else api_headers)
        cors.decorate(req, response)
        seconds = time.monotonic() - state.get("started", time.monotonic())
        route = req.url_rule.rule if req.url_rule is not None else "unmatched"
        services.metrics.observe_request(req.method, route, response.status_code, seconds)
        client = state.get("client")
        fields = {"request_id": state.get("request_id"), "method": req.method, "path": req.path,
                  "status": response.status_code, "duration_ms": round(seconds * 1000, 1),
                  "client": client.name if client else "-"}
        log.info("request id=%(request_id)s method=%(method)s path=%(path)s status=%(status)s "
                 "ms=%(duration_ms).1f client=%(client)s", fields, extra={"fields": fields})
        return response


def new_request_id() -> str:
    """32 random hex digits, like ``uuid4().hex``, without a system call (``random`` reseeds after a fork).

    An id only correlates log lines; it guards nothing, so it needs no secure randomness.
    """
    return f"{random.getrandbits(128):032x}"


def _identify(services: Services, throttle: AuthThrottle, req: Request):
    """The caller's client, counting a failed key against its address (429 once over the limit).

    Raises:
        TooManyRequests: the address failed too often lately. Unauthorized: missing or wrong key.
    """
    address = req.remote_addr or "unknown"
    throttle.check(address)
    try:
        return services.keys.identify(presented_key(req.headers))
    except Unauthorized:
        throttle.failed(address)
        raise


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
                return self._too_large(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    def _too_large(self, environ, start_response) -> list[bytes]:
        """The 413, with the headers and the log line the app would have given it."""
        payload = json.dumps({"status": "error", "error": "payload_too_large",
                              "message": f"The request body is larger than {self.limit} bytes"}).encode()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if given and REQUEST_ID_RE.match(given) else new_request_id()
        start_response("413 Request Entity Too Large",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                        ("Connection", "close"), ("X-Request-ID", request_id), *BASE_HEADERS.items(),
                        ("Content-Security-Policy", API_CSP)])
        fields = {"request_id": request_id, "method": environ.get("REQUEST_METHOD"),
                  "path": environ.get("PATH_INFO"), "status": 413, "client": "-"}
        log.info("request id=%(request_id)s method=%(method)s path=%(path)s status=%(status)s "
                 "client=%(client)s (chunked body over the limit)", fields, extra={"fields": fields})
        return [payload]


def _read_at_most(stream, size: int) -> bytes:
    parts, total = [], 0
    while total < size:
        chunk = stream.read(min(65536, size - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)
