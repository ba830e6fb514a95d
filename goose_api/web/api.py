"""The Api and blueprint classes every endpoint group uses."""

from __future__ import annotations

from copy import deepcopy
from typing import Callable

import flask_smorest
from apispec import BasePlugin
from flask_smorest.arguments import FlaskParser
from webargs import core
from webargs.flaskparser import is_json_request
from werkzeug.routing import BaseConverter

from goose_api.sessions.store import RESERVED_SESSION_IDS, SESSION_ID_RE
from goose_api.web.idempotency import HEADER, KEY_MAX_LENGTH, KEY_PATTERN
from goose_api.web.request_body import parse_json
from goose_api.web.schemas.common import ErrorSchema

SESSION_ID_PATTERN = SESSION_ID_RE.pattern


class SessionIdConverter(BaseConverter):
    """``/session/<session_id:...>``: any path segment but the fixed routes' names.

    So ``GET /session/start`` is a 405 of the start route, not an unknown
    session; a malformed id still reaches the view, which answers 400.
    """

    regex = r"(?!(?:%s)$)[^/]+" % "|".join(RESERVED_SESSION_IDS)


SECURITY_SCHEMES = {
    "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "BearerAuth": {"type": "http", "scheme": "bearer", "description": "the same API key, as a bearer token"},
}


class ThrottleDocs(BasePlugin):
    """Every operation that answers 401 may also answer 429 (failed-auth throttling), in the same shape."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            codes = {str(code): code for code in responses}  # ints here; apispec makes them strings later
            if "401" in codes and "429" not in codes:
                responses[429] = {**deepcopy(responses[codes["401"]]), "description": "Too Many Requests"}


IDEMPOTENCY_HEADER = {
    "in": "header", "name": HEADER, "required": False,
    "description": "Send a request again with the same key and body to get its stored answer instead of a second "
                   "effect (for a turn: the same run); the same key with another request is 422. Keys are per "
                   "client key and kept for idempotency_ttl seconds.",
    "schema": {"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN}}


class IdempotencyDocs(BasePlugin):
    """Every POST takes an ``Idempotency-Key`` header and may answer 422 (key reused) or 409 (still in progress)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        post = (operations or {}).get("post")
        if not isinstance(post, dict) or "security" in post:  # public operations have no client to scope keys to
            return
        post.setdefault("parameters", []).append(deepcopy(IDEMPOTENCY_HEADER))
        responses = post.setdefault("responses", {})
        codes = {str(code): code for code in responses}
        if "401" in codes:
            for status, text in (("422", "Idempotency-Key reused with another request"),
                                 ("409", "Conflict (a request with this Idempotency-Key is still in progress)")):
                if status not in codes:
                    responses[int(status)] = {**deepcopy(responses[codes["401"]]), "description": text}


class GooseApi(flask_smorest.Api):
    """flask-smorest's Api documenting our one error shape and the API key (public routes say ``security=[]``)."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app=None, *, spec_kwargs=None, **kwargs):
        spec_kwargs = {"security": [{name: []} for name in SECURITY_SCHEMES],
                       "extra_plugins": [ThrottleDocs(), IdempotencyDocs()],
                       **(spec_kwargs or {})}
        app.url_map.converters["session_id"] = SessionIdConverter
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)
        self.register_converter(SessionIdConverter, lambda converter: {"type": "string", "pattern": SESSION_ID_PATTERN})

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # a body that fails its schema is the caller's error: 400

    def _raw_load_json(self, req):
        """The body's JSON, nested no deeper than the limit (``request_body.parse_json``)."""
        if not is_json_request(req):
            return core.missing
        return parse_json(req.get_data(cache=True))


ADMIN_NOTE = "Needs an admin key: other keys get 403."


def needs_admin(view: Callable) -> bool:
    """Whether a view changes the server for every key (the request hook answers 403 to other keys)."""
    return getattr(view, "admin_only", False)


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def admin_only(self, func: Callable) -> Callable:
        """Mark a route as a server-wide change: only admin keys may call it (checked before its body is read).

        Place it below the route's other decorators (``functools.wraps`` carries the mark outwards).
        """
        func.admin_only = True  # type: ignore[attr-defined]
        doc = (func.__doc__ or "").strip()
        func.__doc__ = f"{doc}\n\n{ADMIN_NOTE}" if doc else ADMIN_NOTE
        return self.doc(**{"x-admin-only": True})(func)

    def arguments(self, schema, *args, **kwargs) -> Callable:
        """flask-smorest's, with the schema made once per route.

        Given a class, webargs makes an instance per request, and marshmallow
        deep-copies every declared field to make one: ~9 % of the worker's CPU
        in a burst of turns (py-spy). Our schemas keep no state while loading.
        """
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def errors(self, *statuses: int) -> Callable:
        """Document the JSON error answers a route can give; they all share ErrorSchema."""

        def decorate(func: Callable) -> Callable:
            for status in statuses:
                func = self.alt_response(status, schema=ErrorSchema)(func)
            return func

        return decorate


def event_stream_doc(description: str) -> dict:
    """The OpenAPI answer of a ``text/event-stream`` route: each event is ``id``, ``event`` and JSON ``data``."""
    return {"description": description, "content": {"text/event-stream": {"schema": {
        "type": "object", "description": "event types: message, tool_request, tool_response, approval_required, "
                                         "notification, error, done; data is a JSON object",
        "properties": {"id": {"type": "string"}, "event": {"type": "string"}, "data": {"type": "string"}}}}}}
