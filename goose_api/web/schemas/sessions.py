"""Request and answer bodies of the session endpoints."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from goose_api.runs.state import STATES
from goose_api.runs.turns import IF_BUSY, REJECT
from goose_api.sessions.store import RESERVED_SESSION_IDS, SESSION_ID_RE
from goose_api.web.schemas.common import FullMatch, MessageList, StrictBoolean, UsageSchema

PROMPT = validate.Length(min=1, error="must not be empty")
WEBHOOK_RE = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$"


def session_id_field(*, new: bool = False, **kwargs):
    """A session id; ``new``: one a session is to be created with (the endpoints' names are reserved)."""
    checks = [FullMatch(SESSION_ID_RE, error="must be 1-128 characters of letters, digits, '_' or '-'")]
    if new:
        checks.append(validate.NoneOf(RESERVED_SESSION_IDS, error="is reserved for an endpoint; choose another id"))
    return fields.String(validate=checks, **kwargs)


class _TurnOptions(Schema):
    asynchronous = StrictBoolean(data_key="async", load_default=False, metadata={
        "description": "answer 202 at once and run in the background (also: header `Prefer: respond-async`)"})
    stream = StrictBoolean(load_default=False, metadata={
        "description": "answer text/event-stream: the run's events as they happen"})
    webhook = fields.String(validate=FullMatch(WEBHOOK_RE, error="must be an http:// or https:// URL"),
                            metadata={"description": "POSTed the run's final event, signed (default: the "
                                                     "webhook_url setting)", "pattern": WEBHOOK_RE})

    @validates_schema
    def _one_way_to_answer(self, data, **kwargs):
        if data.get("asynchronous") and data.get("stream"):
            raise ValidationError("choose one of async and stream", "stream")


class StartSchema(_TurnOptions):
    prompt = fields.String(required=True, validate=PROMPT)
    session_id = session_id_field(new=True, metadata={"description": "omit for a goose-style id (YYYYMMDD_HHMMSS)"})
    working_dir = fields.String(validate=validate.Regexp("^/", error="must be an absolute path"), metadata={
        "description": "absolute path of an existing directory (inside allowed_roots when set; for a key without "
                       "admin, inside the default working dir when allowed_roots is unset)", "pattern": "^/"})


class ReplySchema(_TurnOptions):
    prompt = fields.String(required=True, validate=PROMPT)
    session_id = session_id_field(metadata={"description": "omit to reply to the most recently active session"})
    if_busy = fields.String(load_default=REJECT, validate=validate.OneOf(IF_BUSY), metadata={
        "description": "when a turn runs on the session: reject (409), enqueue (202, runs after it) or "
                       "interrupt (cancel it, then run this one)"})


class ResumeSchema(_TurnOptions):
    """Resume takes the same answer options as a turn; its prompt is the interrupted turn's."""


class PendingApprovalSchema(Schema):
    id = fields.String(required=True, metadata={"description": "the tool request id to confirm"})
    tool = fields.String(required=True, allow_none=True, metadata={"description": "extension__tool"})
    arguments = fields.Dict(required=True)
    requested = fields.Float(metadata={"description": "when the call started waiting (epoch seconds)"})
    reason = fields.String(metadata={"description": "why it asks: a resumed call that had already started"})


class WebhookSetupSchema(Schema):
    url = fields.String(required=True)
    key = fields.String(required=True, metadata={"description": "the key whose webhook secret signs the deliveries"})
    secret = fields.String(required=True, metadata={"description": "where that key reads its webhook secret"})
    verify = fields.String(required=True, metadata={"description": "how a receiver checks a delivery"})


class TurnSchema(Schema):
    status = fields.String(required=True, metadata={
        "enum": ["success", "warning", "cancelled", "waiting_approval"]})
    message = fields.String(required=True)
    session_id = fields.String(required=True)
    run_id = fields.String()
    response = fields.String(required=True, metadata={"description": "the assistant's final text"})
    messages = MessageList(required=True, metadata={"description": "the goose messages this turn added"})
    usage = fields.Nested(UsageSchema, required=True)
    warnings = fields.List(fields.String())
    cancelled = fields.String(metadata={"description": "what a cancel stopped"})
    resumed_from = fields.String(metadata={"description": "a resume's answer: the interrupted run it drove on"})
    pending_approvals = fields.List(fields.Nested(PendingApprovalSchema),
                                    metadata={"description": "with status waiting_approval: calls to confirm"})
    webhook = fields.Nested(WebhookSetupSchema, metadata={"description": "when the request set up a webhook"})


class AcceptedSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["accepted", "queued"]})
    session_id = fields.String(required=True)
    run_id = fields.String(required=True)
    message = fields.String(required=True)
    webhook = fields.Nested(WebhookSetupSchema, metadata={"description": "when the request set up a webhook"})


class WebhookSecretSchema(Schema):
    key = fields.String(required=True, metadata={"description": "the calling key's name"})
    secret = fields.String(required=True, metadata={"description": "the HMAC-SHA256 key of its webhooks"})
    signature_header = fields.String(required=True, metadata={"example": "X-Goose-Signature"})
    timestamp_header = fields.String(required=True, metadata={"example": "X-Goose-Timestamp"})
    signed = fields.String(required=True, metadata={"description": "what is signed"})
    format = fields.String(required=True, metadata={"example": "sha256=<hex digest>"})


class SessionQuerySchema(Schema):
    since = fields.Integer(load_default=0, validate=validate.Range(min=0), metadata={
        "description": "return only the messages after the first N (the message_count you saw last)"})


class QueuedRunSchema(Schema):
    run_id = fields.String(required=True)
    queued = fields.Float(required=True, metadata={"description": "when it was queued (epoch seconds)"})


class SessionDetailSchema(Schema):
    session_id = fields.String(required=True)
    description = fields.String(required=True)
    working_dir = fields.String(required=True)
    created = fields.Integer(required=True, metadata={"description": "epoch seconds"})
    updated = fields.Integer(required=True, metadata={"description": "epoch seconds"})
    message_count = fields.Integer(required=True)
    usage = fields.Nested(UsageSchema, required=True, metadata={"description": "the session's running sums"})
    state = fields.String(required=True, metadata={"enum": list(STATES)})
    run_id = fields.String(allow_none=True, required=True)
    pending_approvals = fields.List(fields.Nested(PendingApprovalSchema), required=True)
    last_error = fields.Dict(allow_none=True, required=True)
    messages = MessageList(required=True)
    queued_runs = fields.List(fields.Nested(QueuedRunSchema), required=True, metadata={
        "description": "turns waiting for this session (if_busy: enqueue), next first"})


class SessionListQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class SessionInfoSchema(Schema):
    """One entry of ``goose session list --format json``."""

    id = fields.String(required=True)
    path = fields.String(required=True)
    modified = fields.String(required=True, metadata={"example": "2025-01-20 10:15:30 UTC"})
    metadata = fields.Dict(required=True, metadata={"description": "the session file's metadata line"})


class SessionListSchema(Schema):
    sessions = fields.List(fields.Nested(SessionInfoSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class SessionIdSchema(Schema):
    session_id = session_id_field(required=True)


class SessionResultSchema(Schema):
    status = fields.String(required=True, metadata={"example": "success"})
    message = fields.String(required=True)
    session_id = fields.String()
    cancelled = fields.String(allow_none=True)


class SummarySchema(Schema):
    status = fields.String(required=True, metadata={"example": "success"})
    message = fields.String(required=True, metadata={"description": "the summary"})
