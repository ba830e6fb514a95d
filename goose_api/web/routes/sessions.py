"""Session endpoints: start a session, reply to one, list, show, delete, end and summarize them."""

from __future__ import annotations

from goose_api.web import long_requests
from goose_api.web.answers import answer_turn, hold_for_answer
from goose_api.web.api import ApiBlueprint, event_stream_doc
from goose_api.web.current import caller, owned, services
from goose_api.web.schemas.sessions import (
    AcceptedSchema,
    ReplySchema,
    SessionDetailSchema,
    SessionIdSchema,
    SessionListQuerySchema,
    SessionListSchema,
    SessionQuerySchema,
    SessionResultSchema,
    StartSchema,
    SummarySchema,
    TurnSchema,
)

blp = ApiBlueprint("sessions", __name__, description="Sessions: prompts, the agent's answers, and their history")

_STREAM = event_stream_doc("")["content"]
TURN_DOC = {"responses": {"200": {"description": "the turn's answer; with \"stream\": true, its events", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Turn"}}, **_STREAM}, "headers": {
    "Content-Location": {"description": "with \"stream\": true, the run's events URL "
                                        "(`/session/<id>/events?run_id=<run>`) to re-attach to after a drop",
                         "schema": {"type": "string"}}}}}}


@blp.route("/session/start", methods=["POST"])
@blp.arguments(StartSchema)
@blp.response(200, TurnSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="async, or still running after Prefer: wait=N")
@blp.errors(400, 401, 409, 413, 415, 500, 502, 503)
@blp.doc(**TURN_DOC)
def start(body):
    """Start a session with a prompt; wait for the answer, stream it, or run it in the background."""
    svc = services()
    hold_for_answer(asynchronous=body["asynchronous"], stream=body["stream"])
    ref = svc.turns.start(body["prompt"], caller(), body.get("session_id"), body.get("working_dir"),
                          stream=body["stream"], webhook=body.get("webhook"))
    return answer_turn(svc.runs, ref, asynchronous=body["asynchronous"], stream=body["stream"],
                       webhook=body.get("webhook"))


@blp.route("/session/reply", methods=["POST"])
@blp.arguments(ReplySchema)
@blp.response(200, TurnSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="async, still running after Prefer: wait=N, or queued "
                                                           "(if_busy: enqueue)")
@blp.errors(400, 401, 404, 409, 413, 415, 500, 502, 503)
@blp.doc(**TURN_DOC)
def reply(body):
    """Send a prompt to a session (the most recently active one when no id is given)."""
    svc = services()
    session_id = svc.access.resolve(body.get("session_id"), caller())
    hold_for_answer(asynchronous=body["asynchronous"], stream=body["stream"])
    ref = svc.turns.reply(body["prompt"], session_id, stream=body["stream"], if_busy=body["if_busy"],
                          webhook=body.get("webhook"), client=caller().name)
    return answer_turn(svc.runs, ref, asynchronous=body["asynchronous"], stream=body["stream"],
                       webhook=body.get("webhook"))


@blp.route("/sessions", methods=["GET"])
@blp.arguments(SessionListQuerySchema, location="query")
@blp.response(200, SessionListSchema)
@blp.errors(400, 401)
def list_sessions(query):
    """Sessions, newest first, shaped like `goose session list --format json` (paginated)."""
    return services().catalog.list(caller(), query["limit"], query["offset"])


@blp.route("/session/<session_id:session_id>", methods=["GET"])
@blp.arguments(SessionQuerySchema, location="query")
@blp.response(200, SessionDetailSchema)
@blp.errors(400, 401, 404)
def show(query, session_id):
    """A session: its metadata, its run's state (pending approvals, last error) and its messages."""
    return services().catalog.describe(owned(session_id), query["since"])


@blp.route("/session/<session_id:session_id>", methods=["DELETE"])
@blp.response(200, SessionResultSchema)
@blp.errors(400, 401, 404, 409)
def delete(session_id):
    """Delete a session's file and run state (409 while a turn runs on it)."""
    services().catalog.delete(owned(session_id))
    return {"status": "success", "message": f"Session {session_id} deleted", "session_id": session_id}


@blp.route("/session/end", methods=["POST"])
@blp.arguments(SessionIdSchema)
@blp.response(200, SessionResultSchema)
@blp.errors(400, 401, 404, 413, 415)
def end(body):
    """End a session: stop its run, free what the server holds for it; the history is kept."""
    ended = services().catalog.end(owned(body["session_id"]))
    message = f"Session {ended.session_id} ended" + (f"; cancelled {ended.cancelled}" if ended.cancelled else "") \
        + (f"; dropped {ended.dropped} queued turn(s)" if ended.dropped else "")
    return {"status": "success", "message": message, "session_id": ended.session_id, "cancelled": ended.cancelled}


@blp.route("/session/summarize", methods=["POST"])
@blp.arguments(SessionIdSchema)
@blp.response(200, SummarySchema)
@blp.errors(400, 401, 404, 409, 413, 415, 502, 503)
def summarize(body):
    """Replace a session's history with a summary by the model (the old file is kept as a backup)."""
    session_id = owned(body["session_id"])
    long_requests.hold()  # waits on the model like a blocking turn
    return {"status": "success", "message": services().catalog.summarize(session_id)}
