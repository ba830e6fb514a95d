"""The Api and blueprint classes every endpoint group uses."""

from __future__ import annotations

from typing import Callable

import flask_smorest
from flask_smorest.arguments import FlaskParser

from goose_api.schemas.common import ErrorSchema


class GooseApi(flask_smorest.Api):
    """flask-smorest's Api documenting our one error shape."""

    ERROR_SCHEMA = ErrorSchema


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
