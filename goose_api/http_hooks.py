"""What happens around every request: request id, key check, content type, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, request

from goose_api.auth import presented_key
from goose_api.errors import UnsupportedMediaType
from goose_api.services import Services

log = logging.getLogger("goose_api.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def register_request_hooks(app: Flask, services: Services, public_endpoints: frozenset[str]) -> None:
    @app.before_request
    def _begin():
        g.started = time.monotonic()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        g.client = None
        if request.endpoint not in public_endpoints and request.method != "OPTIONS":
            g.client = services.keys.identify(presented_key(request.headers))
        if request.method in BODY_METHODS and _has_body() and not request.is_json:
            raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json")

    @app.after_request
    def _finish(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        client = g.get("client")
        log.info("request id=%s method=%s path=%s status=%s ms=%.1f client=%s", g.get("request_id"),
                 request.method, request.path, response.status_code,
                 (time.monotonic() - g.get("started", time.monotonic())) * 1000,
                 client.name if client else "-")
        return response


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked" \
        or bool(request.mimetype)
