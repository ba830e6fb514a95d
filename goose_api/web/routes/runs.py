"""Run endpoints: follow a session's run (SSE), cancel it, confirm its tool calls."""

from __future__ import annotations

from goose_api.runs.service import RunRef
from goose_api.runs.webhooks import SIGNATURE_HEADER, SIGNED_TEXT, TIMESTAMP_HEADER
from goose_api.web import long_requests
from goose_api.web.answers import accepted, answer_turn, cancel_answer, event_stream, hold_for_answer, last_event_id
from goose_api.web.api import ApiBlueprint, event_stream_doc
from goose_api.web.current import caller, owned, services
from goose_api.web.schemas.runs import CancelSchema, ConfirmSchema, EventsQuerySchema
from goose_api.web.schemas.sessions import AcceptedSchema, ResumeSchema, TurnSchema, WebhookSecretSchema

blp = ApiBlueprint("runs", __name__, description="Runs: follow, cancel and approve a session's turn")

EVENTS_DOC = {"responses": {"200": event_stream_doc("the run's events")}}


@blp.route("/session/<session_id:session_id>/events", methods=["GET"])
@blp.arguments(EventsQuerySchema, location="query")
@blp.errors(400, 401, 404)
@blp.doc(**EVENTS_DOC)
def events(query, session_id):
    """Follow the current or last run as Server-Sent Events; resume with Last-Event-ID or ?after=."""
    runs = services().runs
    record, log = runs.log_of(owned(session_id), query.get("run_id"))
    given = [value for value in (query.get("after"), last_event_id()) if value is not None]
    return event_stream(runs, log, max(given) if given else log.base, session_id,
                        query.get("run_id") or record["run_id"])


@blp.route("/session/<session_id:session_id>/cancel", methods=["POST"])
@blp.response(200, CancelSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="the run has not stopped yet; it will at its next step")
@blp.errors(400, 401, 404, 409)
def cancel(session_id):
    """Stop the session's run at its next step; says what was cancelled."""
    session_id = owned(session_id)
    record, final = services().runs.cancel(session_id, wait=long_requests.try_hold())  # no slot: 202 at once
    if final is None:
        return accepted(RunRef(session_id, record["run_id"], 0), "Cancel requested; the run stops at its next step")
    return cancel_answer(record, final)


@blp.route("/session/<session_id:session_id>/confirm", methods=["POST"])
@blp.arguments(ConfirmSchema)
@blp.response(200, TurnSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="async, or still running after Prefer: wait=N")
@blp.errors(400, 401, 404, 409, 413, 415, 500, 502, 503)
def confirm(body, session_id):
    """Allow or deny a pending tool call; by default waits until the turn ends or asks again."""
    runs = services().runs
    session_id = owned(session_id)
    hold_for_answer(asynchronous=body["asynchronous"])
    ref = runs.confirm(session_id, body["id"], body["action"])
    return answer_turn(runs, ref, asynchronous=body["asynchronous"])


@blp.route("/session/<session_id:session_id>/resume", methods=["POST"])
@blp.arguments(ResumeSchema, required=False)
@blp.response(200, TurnSchema)
@blp.alt_response(202, schema=AcceptedSchema, description="async, or still running after Prefer: wait=N")
@blp.errors(400, 401, 404, 409, 413, 415, 500, 502, 503)
def resume(body, session_id):
    """Drive an interrupted run on from its last saved step; a tool call it had started is not run again silently."""
    runs = services().runs
    session_id = owned(session_id)
    hold_for_answer(asynchronous=body["asynchronous"], stream=body["stream"])
    ref = runs.resume(session_id, stream=body["stream"], webhook=body.get("webhook"), client=caller().name)
    return answer_turn(runs, ref, asynchronous=body["asynchronous"], stream=body["stream"],
                       webhook=body.get("webhook"))


@blp.route("/webhooks/secret", methods=["GET"])
@blp.response(200, WebhookSecretSchema)
@blp.errors(401)
def webhook_secret():
    """The calling key's webhook secret: the HMAC-SHA256 key of the webhooks its turns set up."""
    key = caller().name
    return {"key": key, "secret": services().webhooks.secret_for(key), "signature_header": SIGNATURE_HEADER,
            "timestamp_header": TIMESTAMP_HEADER, "signed": SIGNED_TEXT, "format": "sha256=<hex digest>"}
