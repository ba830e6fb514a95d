"""Bodies of the run endpoints: events, cancel, confirm."""

from marshmallow import Schema, fields, validate

from goose_api.agent.approvals import ACTIONS
from goose_api.runs.service import RUN_ID_PATTERN
from goose_api.runs.state import STATES
from goose_api.web.schemas.common import FullMatch, StrictBoolean


class EventsQuerySchema(Schema):
    after = fields.Integer(validate=validate.Range(min=0), metadata={
        "description": "send only events with a larger id (like the Last-Event-ID header)"})
    run_id = fields.String(validate=FullMatch(RUN_ID_PATTERN, error="must be a run id: run_ and 16 hex digits"),
                           metadata={"description": "an earlier run of the session (default: the current or last "
                                                    "one)", "pattern": RUN_ID_PATTERN})


class ConfirmSchema(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1),
                       metadata={"description": "the id of a pending tool request"})
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    asynchronous = StrictBoolean(data_key="async", load_default=False, metadata={
        "description": "answer 202 at once instead of waiting for the turn to end or ask again"})


class CancelSchema(Schema):
    status = fields.String(required=True, metadata={"example": "success"})
    message = fields.String(required=True)
    session_id = fields.String(required=True)
    run_id = fields.String(required=True)
    state = fields.String(required=True, metadata={"enum": list(STATES)})
    cancelled = fields.String(allow_none=True, metadata={"description": "the step the cancel stopped"})
