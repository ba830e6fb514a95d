"""The Api and blueprint classes every endpoint group uses."""

from __future__ import annotations

from typing import Callable

import flask_smorest
from flask_smorest.arguments import FlaskParser
from werkzeug.routing import BaseConverter

from goose_api.schemas.common import ErrorSchema
from goose_api.sessions import RESERVED_SESSION_IDS


class SessionIdConverter(BaseConverter):
    """``/session/<session_id:...>``: any path segment but the fixed routes' names.

    So ``GET /session/start`` is a 405 of the start route, not an unknown
    session; a malformed id still reaches the view, which answers 400.
    """

    regex = r"(?!(?:%s)$)[^/]+" % "|".join(RESERVED_SESSION_IDS)


class GooseApi(flask_smorest.Api):
    """flask-smorest's Api documenting our one error shape."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app):
        app.url_map.converters["session_id"] = SessionIdConverter
        super().__init__(app)
        self.register_converter(SessionIdConverter, lambda converter: {"type": "string"})


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # a body that fails its schema is the caller's error: 400


class ApiBlueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def errors(self, *statuses: int) -> Callable:
        """Document the JSON error answers a route can give; they all share ErrorSchema."""

        def decorate(func: Callable) -> Callable:
            for status in statuses:
                func = self.alt_response(status, schema=ErrorSchema)(func)
            return func

        return decorate
