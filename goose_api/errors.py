"""The error hierarchy.

Code raises these; ``goose_api.web.errors`` turns them (and marshmallow's
validation errors, and werkzeug's HTTP errors) into the one JSON shape
``{"status": "error", "error": "<code>", "message": "..."}``. Each class is
named by who is at fault: the caller, the model's provider, an extension, us.
"""

from __future__ import annotations

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


class SessionNotFound(NotFound):
    """No such session, or another key's: the one answer for both, so ids cannot be probed."""

    def __init__(self, session_id: str):
        super().__init__(f"Session {session_id} not found; start one with POST /session/start")
        self.session_id = session_id


class Conflict(ApiError):
    status, code = 409, "conflict"


class SessionBusy(Conflict):
    code = "session_busy"


class NoActiveRun(Conflict):
    """Cancel or confirm sent to a session with no run in progress (or not waiting for that)."""

    code = "no_active_run"


class NotResumable(Conflict):
    """Resume sent to a session whose last run was not interrupted."""

    code = "not_resumable"


class IdempotencyInProgress(Conflict):
    """A request with the same Idempotency-Key is still being answered (and has started no run yet)."""

    code = "idempotency_in_progress"


class IdempotencyKeyReused(ApiError):
    """An Idempotency-Key sent again with a different request."""

    status, code = 422, "idempotency_key_reused"


class ServerStopping(ApiError):
    """The worker got SIGTERM: it starts no new run (another worker, or the restarted server, will)."""

    status, code = 503, "server_stopping"


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


class QueueFull(TooManyRequests):
    """A reply with ``if_busy: enqueue`` (or ``interrupt``) to a session whose queue is full."""

    code = "queue_full"


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
    QUOTA = "quota_exceeded"            # a spend limit or a daily quota: waiting minutes does not help
    CONTENT_FILTER = "content_filtered"  # the service refused to answer: safety, recitation, a blocked prompt
    INVALID_ANSWER = "invalid_answer"    # the model produced something unusable (a malformed tool call)
    KINDS = (AUTH, RATE_LIMIT, CONTEXT_LENGTH, UNAVAILABLE, BAD_REQUEST, QUOTA, CONTENT_FILTER, INVALID_ANSWER)
    # Retries each retryable kind allows at most (the settings may allow fewer); one for a bad answer, as
    # the services advise: the same request usually succeeds, but a model that keeps failing will not stop.
    MAX_RETRIES = {INVALID_ANSWER: 1}

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
        return self.kind in (self.RATE_LIMIT, self.UNAVAILABLE, self.INVALID_ANSWER)

    @property
    def max_retries(self) -> int | None:
        """The most retries this error allows, or None when only the settings limit them."""
        return self.MAX_RETRIES.get(self.kind)


class ExtensionError(ApiError):
    """An MCP extension could not be started, reached or used."""

    status, code = 502, "extension_error"


class ToolCallFailed(ExtensionError):
    """A tool call did not produce a result: unknown tool, error result, timeout, crash, cancel.

    The agent loop turns it into a toolResponse error the model reads next turn.
    """

    code = "tool_call_failed"
