"""``/v1/responses``: create a response, retrieve it (or re-attach to its stream), cancel it."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from goose_api.web import long_requests
from goose_api.web.current import caller
from goose_api.web.request_body import json_body
from goose_api.web.responses.request import invalid, read_request
from goose_api.web.responses.service import ResponseService

blp = Blueprint("responses", __name__)
EXTENSION = "goose_api.responses"


def responses() -> ResponseService:
    return current_app.extensions[EXTENSION]


def event_stream(body) -> Response:
    return Response(body, mimetype="text/event-stream", headers={"Cache-Control": "no-store",
                                                                 "X-Accel-Buffering": "no"})


@blp.route("/v1/responses", methods=["POST"])
def create():
    """A response: waited for, streamed (``stream``), or answered at once (``background``)."""
    service = responses()
    body = read_request(json_body())
    if body.stream or not body.background:
        long_requests.hold()  # streamed or waited for: a slot, taken before the turn starts (429: nothing ran)
    record = service.create(body, caller())
    if body.stream:
        return event_stream(service.stream(record))
    if body.background:
        return jsonify(service.snapshot(record))
    return jsonify(service.wait(record))


@blp.route("/v1/responses/<response_id>", methods=["GET"])
def retrieve(response_id: str):
    """The response as it stands; ``?stream=true&starting_after=N`` re-attaches to its events."""
    service = responses()
    record = service.owned(response_id, caller())
    if request.args.get("stream", "false").lower() == "true":
        after = request.args.get("starting_after", "-1")
        if not after.lstrip("-").isdigit():
            raise invalid("starting_after must be the sequence_number of an event already received",
                          "starting_after")
        long_requests.hold()
        return event_stream(service.stream(record, int(after)))
    return jsonify(service.snapshot(record))


@blp.route("/v1/responses/<response_id>/cancel", methods=["POST"])
def cancel(response_id: str):
    """Stop a background response's run (waiting for it to stop only when a long-lived slot is free)."""
    service = responses()
    record = service.owned(response_id, caller())
    return jsonify(service.cancel(record, wait=long_requests.try_hold()))
