"""goose's ExtensionConfig: the model of an extension, as config.yaml and POST /extensions/add give it.

ExtensionConfig is a tagged union on ``type`` (``stdio``, ``sse``,
``streamable_http``, ``builtin``), as goose serialises it. Each variant is its
own schema so unknown fields are rejected per type; ``ExtensionConfigSchema``
picks the variant and reports every problem as marshmallow field messages.
"""

from __future__ import annotations

from typing import Any, Mapping

from marshmallow import Schema, ValidationError, fields, validate

DEFAULT_TIMEOUT = 300  # seconds, as in goose
NAME = validate.Length(min=1, error="Name must not be empty.")
HTTP_URL = validate.URL(schemes={"http", "https"}, require_tld=False,
                        error="Must be an http:// or https:// URL.")


class _Base(Schema):
    type = fields.String(required=True)
    name = fields.String(required=True, validate=NAME)
    timeout = fields.Float(load_default=DEFAULT_TIMEOUT, validate=validate.Range(min=0, min_inclusive=False),
                           metadata={"description": "seconds for the start and for each tool call"})
    description = fields.String(load_default=None, allow_none=True)
    bundled = fields.Boolean(load_default=None, allow_none=True,
                             metadata={"description": "accepted for goose compatibility; ignored"})


class _EnvMixin(Schema):
    envs = fields.Dict(keys=fields.String(validate=NAME), values=fields.String(), load_default=dict,
                       metadata={"description": "environment for the server; values are secrets"})
    env_keys = fields.List(fields.String(validate=NAME), load_default=list,
                           metadata={"description": "names of variables copied from the service's environment"})


class StdioExtensionSchema(_Base, _EnvMixin):
    type = fields.String(required=True, metadata={"enum": ["stdio"]})  # documents the tag
    cmd = fields.String(required=True, validate=validate.Length(min=1))
    args = fields.List(fields.String(), load_default=list)


class SseExtensionSchema(_Base, _EnvMixin):
    type = fields.String(required=True, metadata={"enum": ["sse"]})  # documents the tag
    uri = fields.String(required=True, validate=HTTP_URL)


class StreamableHttpExtensionSchema(_Base, _EnvMixin):
    type = fields.String(required=True, metadata={"enum": ["streamable_http"]})  # documents the tag
    uri = fields.String(required=True, validate=HTTP_URL)
    headers = fields.Dict(keys=fields.String(validate=NAME), values=fields.String(), load_default=dict,
                          metadata={"description": "HTTP headers; values are secrets"})


class BuiltinExtensionSchema(_Base):
    type = fields.String(required=True, metadata={"enum": ["builtin"]})  # documents the tag
    display_name = fields.String(load_default=None, allow_none=True)


VARIANTS: dict[str, type[Schema]] = {
    "stdio": StdioExtensionSchema,
    "sse": SseExtensionSchema,
    "streamable_http": StreamableHttpExtensionSchema,
    "builtin": BuiltinExtensionSchema,
}


class ExtensionConfigSchema(Schema):
    """goose's ExtensionConfig; ``load`` dispatches on ``type`` to the variant's schema."""

    type = fields.String(required=True, validate=validate.OneOf(sorted(VARIANTS)))
    name = fields.String(required=True, validate=NAME)

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None,  # type: ignore[override]
             unknown: str | None = None) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise ValidationError({"_schema": ["An extension config must be a JSON object."]})
        variant = VARIANTS.get(data.get("type")) if isinstance(data.get("type"), str) else None
        if variant is None:
            raise ValidationError({"type": [f"Must be one of: {', '.join(sorted(VARIANTS))}."]})
        return variant().load(data, partial=partial)


def load_extension_config(data: Any) -> dict[str, Any]:
    """Validate an ExtensionConfig; raises marshmallow.ValidationError with field messages."""
    return ExtensionConfigSchema().load(data)
