"""Request and answer bodies of the session endpoints."""

from marshmallow import Schema, fields, validate

from goose_api.schemas.common import MessageSchema, UsageSchema
from goose_api.sessions import SESSION_ID_RE


def _session_id(**kwargs):
    return fields.String(validate=validate.Regexp(
        SESSION_ID_RE, error="must be 1-128 characters of letters, digits, '_' or '-'"), **kwargs)


class StartSchema(Schema):
    prompt = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    session_id = _session_id()
    working_dir = fields.String(metadata={"description": "absolute path of an existing directory (inside "
                                                         "allowed_roots when set)", "pattern": "^/"})


class ReplySchema(Schema):
    prompt = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    session_id = _session_id(metadata={"description": "omit to reply to the most recently active session"})


class TurnSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["success", "warning"]})
    message = fields.String(required=True)
    session_id = fields.String(required=True)
    response = fields.String(required=True, metadata={"description": "the assistant's final text"})
    messages = fields.List(fields.Nested(MessageSchema), required=True,
                           metadata={"description": "the goose messages this turn added"})
    usage = fields.Nested(UsageSchema, required=True)
    warnings = fields.List(fields.String())
