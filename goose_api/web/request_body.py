"""Reading JSON bodies: parsed with a limit on nesting (``storage/bounded_json.py``), by hand or for a schema."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from goose_api.errors import BadRequest
from goose_api.storage import bounded_json


class InvalidJson(BadRequest):
    code = "invalid_json"


class JsonTooDeep(BadRequest):
    code = "json_too_deep"


def parse_json(data: bytes) -> Any:
    """A body's JSON.

    Raises:
        JsonTooDeep: it nests deeper than ``bounded_json.MAX_DEPTH``. ValueError: it is not JSON.
    """
    try:
        return bounded_json.loads(data)
    except bounded_json.TooDeep as exc:
        raise JsonTooDeep(f"The request body nests arrays and objects more than {exc.limit} deep, the limit",
                          details={"limit": exc.limit}) from None


def json_body() -> Any:
    """The parsed JSON body (any JSON value), for routes whose body is not one marshmallow object.

    Raises:
        InvalidJson: the body is empty or not JSON. JsonTooDeep: nested too deep.
    """
    try:
        return parse_json(request.get_data(cache=True))
    except ValueError:
        raise InvalidJson("The request body is not valid JSON") from None


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading with the nesting limit (``request.get_json``); answers keep their key order."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return bounded_json.loads(s)
