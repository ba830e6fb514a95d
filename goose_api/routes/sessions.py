"""Session endpoints: start a session, reply to one."""

from __future__ import annotations

from functools import partial

from flask import g

from goose_api.routes.docs import ApiBlueprint
from goose_api.schemas.sessions import ReplySchema, StartSchema, TurnSchema
from goose_api.services import services

blp = ApiBlueprint("sessions", __name__, description="Sessions: prompts and the agent's answers")


@blp.route("/session/start", methods=["POST"])
@blp.arguments(StartSchema)
@blp.response(200, TurnSchema)
@blp.errors(400, 401, 409, 413, 415, 502, 503)
def start(body):
    """Start a session with a prompt and wait for the agent's answer."""
    svc = services()
    result = svc.turns.start(body["prompt"], body.get("session_id"), body.get("working_dir"),
                             on_created=partial(svc.owners.claim, client=g.client))
    return result.payload(f"Session started with prompt: {body['prompt']}")


@blp.route("/session/reply", methods=["POST"])
@blp.arguments(ReplySchema)
@blp.response(200, TurnSchema)
@blp.errors(400, 401, 404, 409, 413, 415, 502, 503)
def reply(body):
    """Send a prompt to a session (the most recently active one when no id is given)."""
    svc = services()
    session_id = svc.owners.resolve(body.get("session_id"), g.client, lambda: (i for i, _ in svc.store.list_ids()))
    result = svc.turns.reply(body["prompt"], session_id)
    return result.payload(f"Reply: {result.finished.response}")
