"""Bodies of the provider endpoints."""

from marshmallow import Schema, fields, validate

from goose_api.providers import PROVIDERS


class ProviderConfigSchema(Schema):
    provider = fields.String(required=True, metadata={"example": "openai"})
    model = fields.String(required=True, metadata={"example": "gpt-4o"})
    configured = fields.Boolean(metadata={"description": "the provider's credentials are set"})


class ProviderSwitchSchema(Schema):
    provider = fields.String(required=True, validate=validate.Length(min=1),
                             metadata={"enum": sorted(PROVIDERS), "description": "a provider whose credentials "
                                       "are set (400 names the missing variables otherwise)"})
    model = fields.String(validate=validate.Length(min=1),
                          metadata={"description": "omit for the provider's default model"})
