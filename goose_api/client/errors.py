"""The errors :class:`goose_api.client.GooseClient` raises, one class per kind of fault.

Every error the server answers has one JSON shape (``{"status": "error",
"error": "<code>", "message": ...}``; the extension routes say ``"error":
true, "code": ...``). :func:`error_from_answer` is the one place that turns
such an answer (or a run's ``error`` event) into an exception::

    GooseApiError                  status, code, message, retry_after, body
    ├── ConnectionFailed           no answer: refused, timed out, cut (status None)
    ├── AuthError                  401, 403: the key, or what the key may do
    ├── NotFoundError              404: no such session, run or extension
    ├── ConflictError              409: not_resumable, no_active_run, idempotency_in_progress, ...
    │   └── SessionBusyError       409 session_busy: a turn runs (active_run_id)
    ├── ValidationError            400, 405, 413, 415, 422 (idempotency_key_reused): the request is wrong
    ├── RateLimitError             429, or 503 for a provider's rate limit
    ├── UpstreamError              502, 503: something the server relies on failed
    │   ├── ProviderError          provider_error (provider, kind)
    │   ├── ExtensionError         extension_error, tool_call_failed
    │   ├── NotReadyError          not_ready (provider not configured, ...)
    │   └── RunInterruptedError    run_interrupted: a crash or restart stopped the run (resume it)
    └── ServerError                500 and any other status: the server's fault
"""

from __future__ import annotations

from typing import Any, Mapping


class GooseApiError(Exception):
    """An answer that is not a success, or no answer at all.

    Attributes:
        status: the HTTP status (None when no answer came).
        code: the server's machine-readable ``error`` code (``session_busy``, ...).
        message: the server's message: what went wrong and what to do.
        retry_after: seconds the server asked to wait (``Retry-After``), else None.
        body: the whole error answer, for fields such as ``errors`` or ``checks``.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "error",
                 retry_after: float | None = None, body: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.body: dict[str, Any] = dict(body or {})

    def __str__(self) -> str:
        where = f"{self.status} {self.code}" if self.status is not None else self.code
        return f"{self.message} ({where})"


class ConnectionFailed(GooseApiError):
    """The server could not be reached, did not answer in time, or cut the connection."""


class AuthError(GooseApiError):
    """401: the key is missing or wrong; 403: the key may not do this."""


class NotFoundError(GooseApiError):
    """404: no such session, run, extension or endpoint (or another key's session)."""


class ConflictError(GooseApiError):
    """409: the resource is not in a state that allows this: nothing runs to cancel (``no_active_run``),
    nothing to resume (``not_resumable``), the first request with this Idempotency-Key is still being
    answered (``idempotency_in_progress``: retry after ``retry_after``), the session id is taken."""


class SessionBusyError(ConflictError):
    """409 session_busy: a turn already runs on the session; wait for ``active_run_id``."""

    @property
    def active_run_id(self) -> str | None:
        return self.body.get("active_run_id")


class ValidationError(GooseApiError):
    """The request was rejected as malformed: bad fields (``body["errors"]``), too large, wrong method,
    or an Idempotency-Key sent before with a different request (422 ``idempotency_key_reused``)."""


class RateLimitError(GooseApiError):
    """429: too many failed key checks; 503 rate_limit: the provider's rate limit. See ``retry_after``."""


class UpstreamError(GooseApiError):
    """502/503: the provider or an extension failed, or the service is not ready to serve turns."""


class ProviderError(UpstreamError):
    """The LLM provider failed; ``provider`` and ``kind`` (authentication, server_unavailable, ...) say how."""

    @property
    def provider(self) -> str | None:
        return self.body.get("provider")

    @property
    def kind(self) -> str | None:
        return self.body.get("kind")


class ExtensionError(UpstreamError):
    """An MCP extension could not be started, reached or used."""


class NotReadyError(UpstreamError):
    """503 not_ready: e.g. the provider's credentials are not set; the message names what to set."""


class RunInterruptedError(UpstreamError):
    """503 run_interrupted: the run stopped at a saved step (worker crash, restart, shutdown).

    ``reason`` says why; ``POST /session/<id>/resume`` continues it.
    """

    @property
    def reason(self) -> str | None:
        return self.body.get("reason")


class ServerError(GooseApiError):
    """500 (and anything unexpected): the server's fault; its log has the details."""


BY_STATUS: dict[int, type[GooseApiError]] = {
    400: ValidationError, 405: ValidationError, 413: ValidationError, 415: ValidationError,
    422: ValidationError, 401: AuthError, 403: AuthError, 404: NotFoundError, 409: ConflictError,
    429: RateLimitError, 502: UpstreamError, 503: UpstreamError,
}
BY_CODE: dict[str, type[GooseApiError]] = {
    "session_busy": SessionBusyError, "provider_error": ProviderError, "extension_error": ExtensionError,
    "tool_call_failed": ExtensionError, "not_ready": NotReadyError, "run_interrupted": RunInterruptedError,
}


def error_class(status: int, code: str, body: Mapping[str, Any]) -> type[GooseApiError]:
    """The class for an error answer: by code where the code is finer than the status."""
    if body.get("kind") == "rate_limit":
        return RateLimitError
    by_status = BY_STATUS.get(status, ServerError if status >= 500 or status < 400 else ValidationError)
    by_code = BY_CODE.get(code)
    return by_code if by_code is not None and issubclass(by_code, by_status) else by_status


def error_from_answer(status: int, body: Any, headers: Mapping[str, str] | None = None,
                      text: str = "") -> GooseApiError:
    """The exception for an HTTP error answer (any body: ours, a proxy's HTML page, nothing)."""
    body = body if isinstance(body, dict) else {}
    code = body.get("code") if body.get("error") is True else body.get("error")
    code = code if isinstance(code, str) and code else f"http_{status}"
    message = body.get("message") if isinstance(body.get("message"), str) else None
    if not message:
        message = " ".join(text.split())[:200] or f"HTTP {status} with no error message"
    retry_after = _seconds((headers or {}).get("Retry-After") or body.get("retry_after"))
    return error_class(status, code, body)(message, status=status, code=code, retry_after=retry_after, body=body)


def error_from_event(data: Mapping[str, Any]) -> GooseApiError:
    """The exception for a run's ``error`` event: the answer the blocking request would have had."""
    status = data.get("http_status") if isinstance(data.get("http_status"), int) else 500
    return error_from_answer(status, dict(data))


def _seconds(value: Any) -> float | None:
    """``Retry-After`` as seconds (its HTTP-date form is not used by this server)."""
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
