"""The Api and blueprint classes every endpoint group uses."""

from __future__ import annotations

from typing import Callable

import flask_smorest
from flask_smorest.arguments import FlaskParser

from goose_api.schemas.common import ErrorSchema


SECURITY_SCHEMES = {
    "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "BearerAuth": {"type": "http", "scheme": "bearer", "description": "the same API key, as a bearer token"},
}


class GooseApi(flask_smorest.Api):
    """flask-smorest's Api documenting our one error shape and the API key (public routes say ``security=[]``)."""

    ERROR_SCHEMA = ErrorSchema

    def __init__(self, app=None, *, spec_kwargs=None, **kwargs):
        spec_kwargs = {"security": [{name: []} for name in SECURITY_SCHEMES], **(spec_kwargs or {})}
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)


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
