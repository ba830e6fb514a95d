"""Answers of the operations endpoints: health, readiness, metrics."""

from marshmallow import Schema, fields


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class CheckSchema(Schema):
    name = fields.String(required=True, metadata={"example": "provider"})
    ok = fields.Boolean(required=True)
    reason = fields.String(metadata={"description": "why the check failed and what to do"})
    provider = fields.String()
    model = fields.String()
    extensions = fields.Dict(keys=fields.String(), values=fields.String(),
                             metadata={"description": "extension name -> running | failed"})


class ReadySchema(Schema):
    status = fields.String(required=True, metadata={"example": "ready"})
    checks = fields.List(fields.Nested(CheckSchema), required=True)


class MetricsSummarySchema(Schema):
    """The original goose-api's metrics JSON (sent for ``Accept: application/json``)."""

    session_messages = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                                   metadata={"description": "messages in each session the key can see"})
    active_sessions = fields.Integer(required=True, metadata={"description": "sessions the key can see"})
    pending_requests = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                                   metadata={"description": "tool calls running now, by extension"})
