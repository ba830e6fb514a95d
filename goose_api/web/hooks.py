"""What happens around every request: request id, CORS, key check (throttled), admin-only routes,
content type, security headers, metrics and the access log."""

from __future__ import annotations

import logging
import random
import re
import time

from flask import Flask, Request, g, request

from goose_api.auth import presented_key
from goose_api.errors import Forbidden, Unauthorized, UnsupportedMediaType
from goose_api.services import Services
from goose_api.web.api import needs_admin
from goose_api.web.security import Cors, security_headers
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
        state.request_id = request_id_for(req.headers.get("X-Request-ID", ""))
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


def request_id_for(given: str) -> str:
    """The request's id: the client's ``X-Request-ID`` if it is a well-formed one, else a new one."""
    return given if given and REQUEST_ID_RE.fullmatch(given) else new_request_id()


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
