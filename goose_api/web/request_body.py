"""Reading a JSON body by hand, for routes whose body is not one marshmallow object."""

from __future__ import annotations

from typing import Any

from flask import request

from goose_api.errors import BadRequest


class InvalidJson(BadRequest):
    code = "invalid_json"


def json_body() -> Any:
    """The parsed JSON body (any JSON value).

    Raises:
        InvalidJson: the body is empty or not JSON.
    """
    data = request.get_json(silent=True)
    if data is None and request.get_data(cache=True).strip() not in (b"null",):
        raise InvalidJson("The request body is not valid JSON")
    return data
