"""Browser-facing protections: security headers on every answer, CORS for listed origins only.

The API answers JSON to scripts, so its pages may never be framed, sniffed,
cached or given a referrer. The one HTML page, ``/docs``, loads its scripts
and styles from this server only, so its Content-Security-Policy allows
``'self'`` and nothing else (Swagger UI sets inline style attributes, hence
``'unsafe-inline'`` for styles, never for scripts).

CORS is off unless ``cors_origins`` names origins: then a preflight from one of
them is answered here (before the key check: browsers send no key in a
preflight) and its real requests get ``Access-Control-Allow-Origin``. Other
origins get no CORS header at all, so browsers keep blocking them.
"""

from __future__ import annotations

from typing import Iterable

from flask import Request, Response

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'")
BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_REQUEST_HEADERS = "x-api-key, authorization, content-type, x-request-id, last-event-id"
CORS_EXPOSED_HEADERS = "X-Request-ID, Retry-After, Allow"
PREFLIGHT_MAX_AGE = "600"


def security_headers(docs_page: bool = False) -> dict[str, str]:
    """Headers every answer carries; ``docs_page`` relaxes the CSP just enough for Swagger UI."""
    return {**BASE_HEADERS, "Content-Security-Policy": DOCS_CSP if docs_page else API_CSP}


class Cors:
    """Cross-origin access for the configured origins (exact ``scheme://host[:port]`` matches)."""

    def __init__(self, origins: Iterable[str]):
        self.origins = frozenset(origin.rstrip("/") for origin in origins if origin)

    def allowed(self, request: Request) -> str | None:
        origin = request.headers.get("Origin")
        return origin if origin and origin in self.origins else None

    def preflight(self, request: Request) -> Response | None:
        """The answer to a CORS preflight from an allowed origin, or None to carry on as usual."""
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        origin = self.allowed(request)
        if origin is None:
            return None
        response = Response(status=204)
        response.headers.update({
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_REQUEST_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        })
        return response

    def decorate(self, request: Request, response: Response) -> None:
        """Add the CORS answer headers (and ``Vary: Origin`` whenever CORS is on)."""
        if not self.origins:
            return
        response.vary.add("Origin")
        origin = self.allowed(request)
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.setdefault("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS)
