"""Bodies of the extension endpoints: the name to remove, and the answers.

The config an add sends is goose's ExtensionConfig, modelled in ``goose_api.mcp.config``.
"""

from __future__ import annotations

from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields

from goose_api.mcp.config import NAME


class ExtensionNameSchema(Schema):
    name = fields.String(required=True, validate=NAME)


def load_extension_name(data: Any) -> str:
    """The name in a remove request: a bare JSON string (goose's shape) or ``{"name": ...}``."""
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, Mapping):
        raise ValidationError({"name": ['Send the extension name as a JSON string or {"name": ...}.']})
    return ExtensionNameSchema().load(data)["name"]


class ExtensionResultSchema(Schema):
    """The seed's answer to add/remove: ``{"error": false, "message": null}``."""

    error = fields.Boolean(required=True)
    message = fields.String(required=True, allow_none=True)


class ExtensionErrorSchema(Schema):
    """Errors of add/remove keep the seed's ``"error": true`` beside our error code."""

    status = fields.String(required=True)
    error = fields.Boolean(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict()


class ExtensionNamesSchema(Schema):
    extensions = fields.List(fields.String(), required=True)


class ExtensionDetailSchema(Schema):
    name = fields.String(required=True)
    key = fields.String(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["running", "failed"]})
    tools = fields.List(fields.String(), required=True, metadata={"description": "tool names as the model sees them"})
    last_error = fields.String(allow_none=True)
    timeout = fields.Float()
    env_keys = fields.List(fields.String())
    pid = fields.Integer(allow_none=True)


class ExtensionDetailsSchema(Schema):
    extensions = fields.List(fields.Nested(ExtensionDetailSchema), required=True)
