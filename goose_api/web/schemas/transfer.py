"""Bodies of fork, export and import."""

from marshmallow import Schema, fields, validate

from goose_api.sessions.transfer import EXPORT_FORMATS, IMPORT_FORMATS
from goose_api.web.schemas.sessions import session_id_field

NEW_ID = dict(new=True, metadata={"description": "the new session's id (409 if taken); omit for a goose-style id"})


class ForkSchema(Schema):
    at_message = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "copy the first N messages (default: all but an unanswered last tool request); a cut "
                       "between a tool request and its answer is refused"})
    session_id = session_id_field(**NEW_ID)


class ExportQuerySchema(Schema):
    format = fields.String(load_default="goose-jsonl", validate=validate.OneOf(EXPORT_FORMATS))


class ImportSchema(Schema):
    format = fields.String(required=True, validate=validate.OneOf(IMPORT_FORMATS))
    data = fields.Raw(required=True, metadata={
        "description": "goose-jsonl: the file's text; json: goose's Session object; goose-sqlite: the "
                       "sessions.db file, base64"})
    session_id = session_id_field(**NEW_ID)
    working_dir = fields.String(validate=validate.Regexp("^/", error="must be an absolute path"), metadata={
        "description": "absolute path of an existing directory; default: the session's own if it exists here, "
                       "else the server's", "pattern": "^/"})
    source_id = fields.String(validate=validate.Length(min=1, max=256), metadata={
        "description": "goose-sqlite: the session's id in the database (optional when it holds one)"})


class ImportResultSchema(Schema):
    status = fields.String(required=True, metadata={"example": "success"})
    message = fields.String(required=True)
    session_id = fields.String(required=True, metadata={"description": "the new session"})
    message_count = fields.Integer(required=True)
    working_dir = fields.String(required=True, metadata={"description": "the working dir the session got"})


class ForkResultSchema(ImportResultSchema):
    source_id = fields.String(required=True, metadata={"description": "the session it was forked from"})
