"""Session endpoints: start a session, reply to one, list, show, delete, end and summarize them."""

from __future__ import annotations

from functools import partial

from flask import g

from goose_api.errors import NotFound
from goose_api.web.answers import answer_turn
from goose_api.web.api import ApiBlueprint, event_stream_doc
from goose_api.web.current import services
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


def owned(session_id: str) -> str:
    """A well-formed id of a session the calling key may use (others do not exist for it: 404).

    Raises:
        BadRequest: a malformed id. NotFound: no such session, or another key's.
    """
    svc = services()
    svc.owners.check(svc.store.check_id(session_id), g.client)
    if not svc.store.exists(session_id):
        raise NotFound(f"Session {session_id} not found; start one with POST /session/start")
    return session_id


@blp.route("/session/start", methods=["POST"])
@blp.arguments(StartSchema)
@blp.response(200, TurnSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="async, or still running after Prefer: wait=N")
@blp.errors(400, 401, 409, 413, 415, 500, 502, 503)
@blp.doc(**TURN_DOC)
def start(body):
    """Start a session with a prompt; wait for the answer, stream it, or run it in the background."""
    svc = services()
    ref = svc.turns.start(body["prompt"], body.get("session_id"), body.get("working_dir"), stream=body["stream"],
                          webhook=body.get("webhook"), client=g.client.name, confined=not g.client.admin,
                          on_created=partial(svc.owners.claim, client=g.client))
    return answer_turn(ref, asynchronous=body["asynchronous"], stream=body["stream"], webhook=body.get("webhook"))


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
    session_id = svc.owners.resolve(body.get("session_id"), g.client, lambda: (i for i, _ in svc.store.list_ids()))
    ref = svc.turns.reply(body["prompt"], session_id, stream=body["stream"], if_busy=body["if_busy"],
                          webhook=body.get("webhook"), client=g.client.name)
    return answer_turn(ref, asynchronous=body["asynchronous"], stream=body["stream"], webhook=body.get("webhook"))


@blp.route("/sessions", methods=["GET"])
@blp.arguments(SessionListQuerySchema, location="query")
@blp.response(200, SessionListSchema)
@blp.errors(400, 401)
def list_sessions(query):
    """Sessions, newest first, shaped like `goose session list --format json` (paginated)."""
    svc = services()
    return svc.catalog.list(query["limit"], query["offset"], only=partial(svc.owners.visible, client=g.client))


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
    answer = services().catalog.delete(owned(session_id))
    services().owners.forget(session_id)
    return answer


@blp.route("/session/end", methods=["POST"])
@blp.arguments(SessionIdSchema)
@blp.response(200, SessionResultSchema)
@blp.errors(400, 401, 404, 413, 415)
def end(body):
    """End a session: stop its run, free what the server holds for it; the history is kept."""
    return services().catalog.end(owned(body["session_id"]))


@blp.route("/session/summarize", methods=["POST"])
@blp.arguments(SessionIdSchema)
@blp.response(200, SummarySchema)
@blp.errors(400, 401, 404, 409, 413, 415, 502, 503)
def summarize(body):
    """Replace a session's history with a summary by the model (the old file is kept as a backup)."""
    return {"status": "success", "message": services().catalog.summarize(owned(body["session_id"]))}
