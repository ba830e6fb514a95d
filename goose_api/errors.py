"""The error hierarchy.

Code raises these; ``goose_api.error_handlers`` turns them (and marshmallow's
validation errors, and werkzeug's HTTP errors) into the one JSON shape
``{"status": "error", "error": "<code>", "message": "..."}``. Each class is
named by who is at fault: the caller, the model's provider, an extension, us.
"""

from __future__ import annotations

import logging
from typing import Any


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def payload(self) -> dict[str, Any]:
        return {"status": "error", "error": self.code, "message": self.message, **self.details}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class ValidationFailed(BadRequest):
    code = "validation_error"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class SessionBusy(Conflict):
    code = "session_busy"


class NoActiveRun(Conflict):
    """Cancel or confirm sent to a session with no run in progress (or not waiting for that)."""

    code = "no_active_run"


class RunFailed(ApiError):
    """A run ended with an error; re-raised as the HTTP answer of whoever waited for it.

    The run's ``error`` event carries the original error's status, code and
    details, so the answer is the one the error would have had if the turn
    had run in the request's own thread.
    """

    def __init__(self, status: int, code: str, message: str, *, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message, details=details, headers=headers)
        self.status = status
        self.code = code


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class NotReady(ApiError):
    status, code = 503, "not_ready"


class ConfigurationError(Exception):
    """The service cannot start (or a provider cannot be built) as configured."""


class ProviderError(ApiError):
    """An LLM provider call failed. ``kind`` is one of KINDS."""

    AUTH = "authentication"
    RATE_LIMIT = "rate_limit"
    CONTEXT_LENGTH = "context_length_exceeded"
    UNAVAILABLE = "server_unavailable"
    BAD_REQUEST = "bad_request"
    KINDS = (AUTH, RATE_LIMIT, CONTEXT_LENGTH, UNAVAILABLE, BAD_REQUEST)

    status = 502
    code = "provider_error"

    def __init__(self, provider: str, kind: str, detail: str, *,
                 http_status: int | None = None, retry_after: float | None = None):
        super().__init__(f"The {provider} provider failed ({kind}): {detail}",
                         details={"provider": provider, "kind": kind})
        self.provider = provider
        self.kind = kind
        self.detail = detail
        self.http_status = http_status
        self.retry_after = retry_after
        if kind == self.RATE_LIMIT:
            self.status = 503
            if retry_after is not None:
                self.headers = {"Retry-After": str(max(1, int(retry_after + 0.999)))}

    @property
    def retryable(self) -> bool:
        return self.kind in (self.RATE_LIMIT, self.UNAVAILABLE)


class ExtensionError(ApiError):
    """An MCP extension could not be started, reached or used."""

    status, code = 502, "extension_error"


class ToolCallFailed(ExtensionError):
    """A tool call did not produce a result: unknown tool, error result, timeout, crash, cancel.

    The agent loop turns it into a toolResponse error the model reads next turn.
    """

    code = "tool_call_failed"


# --- the one place errors become HTTP answers ---------------------------------

def _validation_message(messages: Any) -> str:
    """Flatten marshmallow's nested field messages into one readable sentence."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts.append(f"{prefix or 'body'}: {' '.join(value)}")
        else:
            parts.append(f"{prefix or 'body'}: {value}")

    walk("", messages)
    return "; ".join(parts)


def http_error_payload(exc: Any) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Map a werkzeug HTTPException (routing, 405, 413, webargs validation) to our JSON."""
    status = exc.code or 500
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        messages = messages.get("json", messages) if isinstance(messages, dict) else messages
        if messages == ["Invalid JSON body."]:
            return {"status": "error", "error": "invalid_json",
                    "message": "The request body is not valid JSON"}, 400, headers
        return {"status": "error", "error": "validation_error",
                "message": f"Invalid request: {_validation_message(messages)}",
                "errors": messages}, 400, headers
    allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
    texts = {
        404: ("not_found", "No such endpoint; see GET /openapi.json for the API"),
        405: ("method_not_allowed", f"Method not allowed here; allowed: {allowed}"),
        413: ("payload_too_large", "The request body is too large"),
        415: ("unsupported_media_type", "Send the body as JSON with Content-Type: application/json"),
        400: ("bad_request", "The request could not be understood"),
    }
    code, message = texts.get(status, (str(getattr(exc, "name", "error")).lower().replace(" ", "_"),
                                       getattr(exc, "description", None) or "Request failed"))
    return {"status": "error", "error": code, "message": message}, status, headers


def seed_error_shape(view: Any) -> Any:
    """Mark a view whose errors also carry the seed's ``"error": true`` (the extension routes)."""
    view.seed_error_shape = True
    return view


def register_error_handlers(app: Any) -> None:
    from flask import jsonify, request
    from marshmallow import ValidationError
    from werkzeug.exceptions import HTTPException

    log = logging.getLogger("goose_api.errors")

    def respond(payload: dict[str, Any], status: int, headers: dict[str, str]):
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if getattr(view, "seed_error_shape", False):
            payload = {**payload, "error": True, "code": payload["error"]}
        response = jsonify(payload)
        response.status_code = status
        response.headers.update(headers)
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        if exc.status >= 500:
            log.warning("request failed status=%s error=%s message=%s", exc.status, exc.code, exc.message)
        return respond(exc.payload(), exc.status, exc.headers)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        return respond({"status": "error", "error": "validation_error",
                        "message": f"Invalid request: {_validation_message(exc.messages)}",
                        "errors": exc.messages}, 400, {})

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if (exc.code or 500) >= 500:
            log.error("request failed status=%s", exc.code)
            return respond({"status": "error", "error": "internal_error",
                            "message": "Internal error; the server log has the details"}, exc.code or 500, {})
        return respond(*http_error_payload(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return respond({"status": "error", "error": "internal_error",
                        "message": "Internal error; the server log has the details"}, 500, {})
