"""Bodies of the provider endpoints."""

from marshmallow import Schema, fields, validate


class ProviderConfigSchema(Schema):
    provider = fields.String(required=True, metadata={"example": "openai"})
    model = fields.String(required=True, metadata={"example": "gpt-4o"})
    configured = fields.Boolean(metadata={"description": "the provider's credentials are set"})


class ProviderSwitchSchema(Schema):
    provider = fields.String(required=True, validate=validate.Length(min=1))
    model = fields.String(validate=validate.Length(min=1),
                          metadata={"description": "omit for the provider's default model"})
