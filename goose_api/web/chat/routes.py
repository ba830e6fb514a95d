"""``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, request

from goose_api.errors import NotFound
from goose_api.web import long_requests
from goose_api.web.chat.request import read_request
from goose_api.web.chat.service import ChatService, session_header
from goose_api.web.current import caller, services
from goose_api.web.model_choice import model_ids
from goose_api.web.request_body import json_body

blp = Blueprint("chat", __name__)
EXTENSION = "goose_api.chat"
SESSION_HEADER = "X-Goose-Session-Id"


@blp.route("/v1/chat/completions", methods=["POST"])
def complete():
    """The turn's answer, whole or streamed; the session it ran on is in ``X-Goose-Session-Id``."""
    chat: ChatService = current_app.extensions[EXTENSION]
    body = read_request(json_body())
    long_requests.hold()  # streamed or waited for, either way: taken before the turn starts (429: nothing ran)
    started = chat.start(body, caller(), session_header(request.headers.get(SESSION_HEADER)))
    if body.stream:
        response = Response(chat.chunks(started), mimetype="text/event-stream",
                            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    else:
        response = jsonify(chat.complete(started))
    response.headers[SESSION_HEADER] = started.ref.session_id
    return response


@blp.route("/v1/models", methods=["GET"])
def models():
    """The model names to send: ``goose`` (the server's model) and the server's provider and model in full."""
    created = int(time.time())
    return {"object": "list", "data": [model(name, created) for name in model_ids(services().providers)]}


@blp.route("/v1/models/<path:model_id>", methods=["GET"])
def show_model(model_id: str):
    if model_id not in model_ids(services().providers):
        raise NotFound(f"The model {model_id!r} does not exist; GET /v1/models lists them",
                       details={"param": "model"})
    return model(model_id, int(time.time()))


def model(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "goose-api"}
