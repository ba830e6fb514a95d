"""The one place errors become HTTP answers: every exception and validation failure, one JSON shape."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from goose_api.errors import ApiError, PayloadTooLarge

log = logging.getLogger(__name__)


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


def too_large_body(limit: int) -> bytes:
    """The 413 body of a request body over ``max_body_bytes`` (``body_limit.py`` answers it before Flask runs)."""
    error = PayloadTooLarge(f"The request body is larger than {limit} bytes, the limit (max_body_bytes)",
                            details={"limit": limit})
    return json.dumps(error.payload()).encode()


def seed_error_shape(view: Any) -> Any:
    """Mark a view whose errors also carry the seed's ``"error": true`` (the extension routes)."""
    view.seed_error_shape = True
    return view


OPENAI_PREFIX = "/v1/"  # the OpenAI dialects' routes: errors in OpenAI's shape
OPENAI_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error"}


def openai_error(payload: dict[str, Any], status: int) -> dict[str, Any]:
    """Our error as OpenAI's ``{"error": {"message", "type", "param", "code"}}`` (what its SDKs parse).

    ``type`` follows OpenAI's use: ``invalid_request_error`` for the caller's
    mistakes (401 too, with code ``invalid_api_key``), ``server_error`` for ours
    and the provider's; ``param`` names the offending field when one does.
    """
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = "invalid_api_key" if status == 401 else payload.get("error")
    param = payload.get("param")
    if param is None and isinstance(payload.get("errors"), dict) and payload["errors"]:
        param = next(iter(payload["errors"]))
    return {"error": {"message": payload.get("message") or "Request failed", "type": kind,
                      "param": param, "code": code}}


def register_error_handlers(app: Any) -> None:
    def respond(payload: dict[str, Any], status: int, headers: dict[str, str]):
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if request.path.startswith(OPENAI_PREFIX):
            payload = openai_error(payload, status)
        elif getattr(view, "seed_error_shape", False):
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
