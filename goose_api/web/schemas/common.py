"""Schemas shared by several endpoint groups."""

import re

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Validator


class FullMatch(Validator):
    """The whole value matches ``pattern`` (marshmallow's ``Regexp`` uses ``match``: ``$`` lets a "\n" through)."""

    def __init__(self, pattern: str | re.Pattern, error: str):
        self.regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        self.error = error

    def __call__(self, value):
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ValidationError(self.error)
        return value


class StrictBoolean(fields.Boolean):
    """JSON ``true`` or ``false`` only (marshmallow's Boolean also takes "yes", 1, "on", ...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ErrorSchema(Schema):
    status = fields.String(required=True, metadata={"example": "error"})
    error = fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = fields.String(required=True, metadata={"description": "what went wrong and what to do"})
    errors = fields.Dict(metadata={"description": "per-field validation messages"})
    provider = fields.String()
    kind = fields.String()
    session_id = fields.String()
    checks = fields.List(fields.Dict(), metadata={"description": "GET /ready: every check and its outcome"})
    run_id = fields.String()
    active_run_id = fields.String(allow_none=True, metadata={"description": "409 session_busy: the run to wait for"})
    limit = fields.Integer(metadata={"description": "429 for a stream or blocking request: the limit reached"})
    scope = fields.String(metadata={"description": "429 for a stream or blocking request: whose limit, "
                                                   "\"key\" (the API key's) or \"server\" (the worker's)"})


class UsageSchema(Schema):
    input_tokens = fields.Integer(allow_none=True)
    output_tokens = fields.Integer(allow_none=True)
    total_tokens = fields.Integer(allow_none=True)
    cache_read_tokens = fields.Integer(metadata={"description": "input tokens read from the provider's prompt "
                                                                "cache (when it reports them)"})
    cache_write_tokens = fields.Integer(metadata={"description": "input tokens written to the provider's "
                                                                 "prompt cache (when it reports them)"})


class MessageSchema(Schema):
    """A goose message: role, created (seconds) and typed content items."""

    role = fields.String(required=True, metadata={"enum": ["user", "assistant"]})
    created = fields.Integer(required=True)
    content = fields.List(fields.Dict(), required=True)


class MessageList(fields.List):
    """``List(Nested(MessageSchema))`` in answers: documented item by item, passed through as it is.

    The messages of an answer are ``conversation.Message.to_json()`` output:
    already goose's wire form, built from validated messages. Dumping them
    again field by field took a third of a ``GET /session/<id>`` of 100
    messages (``bench/README.md``); the OpenAPI document is the same.
    """

    def __init__(self, **kwargs):
        super().__init__(fields.Nested(MessageSchema), **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else list(value)
