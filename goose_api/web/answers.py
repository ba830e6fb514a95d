"""How a started turn is answered: wait for it, stream it, or 202 at once.

Shared by start, reply, confirm and resume. The request's ``async``/``stream``
fields and its ``Prefer`` header (RFC 7240: ``respond-async``, ``wait=N``)
choose. The caller passes the run service; nothing here looks up the app's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify, request

from goose_api.errors import BadRequest
from goose_api.runs.event_log import EventLog
from goose_api.runs.service import RunRef, RunService
from goose_api.runs.turns import Queued
from goose_api.runs.webhooks import SIGNATURE_HEADER, SIGNED_TEXT, TIMESTAMP_HEADER
from goose_api.web import long_requests
from goose_api.web.current import caller
from goose_api.web.idempotency import remember_run
from goose_api.web.schemas.sessions import AcceptedSchema
from goose_api.web.sse import stream_events


@dataclass(frozen=True)
class Preference:
    respond_async: bool = False
    wait: float | None = None


def preference() -> Preference:
    """The request's ``Prefer`` header; preferences we do not know are ignored, as RFC 7240 says."""
    respond_async, wait = False, None
    for token in request.headers.get("Prefer", "").split(","):
        name, _, value = token.split(";")[0].strip().partition("=")
        if name.lower() == "respond-async":
            respond_async = True
        elif name.lower() == "wait" and value.strip().isdigit():
            wait = float(value.strip())
    return Preference(respond_async, wait)


def hold_for_answer(*, asynchronous: bool = False, stream: bool = False) -> None:
    """Before a turn starts: one answered in this request (streamed or waited for) takes a long-lived slot.

    Raises:
        TooManyRequests: no slot is free (nothing has started).
    """
    if stream or not (asynchronous or preference().respond_async):
        long_requests.hold()


def answer_turn(runs: RunService, ref: RunRef | Queued, *, asynchronous: bool = False,
                stream: bool = False, webhook: str | None = None) -> Any:
    """The HTTP answer for a run just started (or resumed by a confirm), or for a queued turn (202).

    ``webhook``: the URL the request set up; a JSON answer then says how to verify its deliveries.
    """
    setup = webhook_setup(webhook) if webhook else None
    if isinstance(ref, Queued):
        return accepted(ref, "Queued behind the session's current run", status="queued", webhook=setup)
    remember_run(ref)
    if stream:
        _, log = runs.log_of(ref.session_id, ref.run_id)
        response = event_stream(runs, log, ref.after, ref.session_id, ref.run_id)
        response.headers["Content-Location"] = events_location(ref)  # where to re-attach after a drop
        return response
    prefer = preference()
    if asynchronous or prefer.respond_async:
        response = accepted(ref, webhook=setup)
        if prefer.respond_async:
            response.headers["Preference-Applied"] = "respond-async"
        return response
    long_requests.hold()  # taken before the turn started, except when a repeated request attaches to its run
    answer = runs.wait(ref, prefer.wait)
    if answer is None:
        response = accepted(ref, f"Still running after {prefer.wait:g} s", webhook=setup)
        response.headers["Preference-Applied"] = f"wait={prefer.wait:g}"
        return response
    return {**answer, "webhook": setup} if setup else answer


def webhook_setup(url: str) -> dict[str, str]:
    """How the receiver at ``url`` verifies what it gets: signed with the calling key's webhook secret."""
    key = caller().name
    return {"url": url, "key": key, "secret": "GET /webhooks/secret",
            "verify": f"{SIGNATURE_HEADER} is sha256=<hex HMAC-SHA256 of \"{SIGNED_TEXT}\"> keyed with the "
                      f"webhook secret of key {key!r} (GET /webhooks/secret answers it to that key); "
                      f"compare in constant time and reject an old {TIMESTAMP_HEADER}"}


def accepted(ref: RunRef | Queued, note: str = "Running in the background", status: str = "accepted",
             webhook: dict[str, str] | None = None) -> Response:
    body = AcceptedSchema().dump({
        "status": status, "session_id": ref.session_id, "run_id": ref.run_id,
        "message": f"{note}: poll GET /session/{ref.session_id} or follow GET /session/{ref.session_id}/events",
        **({"webhook": webhook} if webhook else {})})
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = f"/session/{ref.session_id}"
    return response


def cancel_answer(record: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
    """What a cancel stopped, from the run's final event."""
    stopped = final.get("cancelled")
    message = f"Cancelled {stopped}" if stopped else f"The run ended before it could be cancelled ({final['status']})"
    return {"status": "success", "message": message, "session_id": record["session_id"],
            "run_id": record["run_id"], "state": record["state"], "cancelled": stopped}


def event_stream(runs: RunService, log: EventLog, after: int, session_id: str, run_id: str) -> Response:
    """A ``text/event-stream`` of the run's events after ``after``; holds this request's thread until it ends.

    Raises:
        TooManyRequests: no long-lived slot is free (see ``long_requests``).
    """
    long_requests.hold()
    settings = runs.settings
    body = stream_events(log, after, heartbeat=settings.sse_heartbeat, poll=runs.read_interval(run_id),
                         check_owner=lambda: runs.status(session_id), stopping=runs.stopping.is_set)
    return Response(body, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def last_event_id() -> int | None:
    """The ``Last-Event-ID`` an SSE client sends when it reconnects.

    Raises:
        BadRequest: it is not an event id of ours.
    """
    value = request.headers.get("Last-Event-ID")
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit():
        raise BadRequest("Last-Event-ID must be the numeric id of an event this API sent")
    return int(value.strip())


def events_location(ref: RunRef) -> str:
    """The URL of a run's events: a streamed answer's ``Content-Location``."""
    return f"/session/{ref.session_id}/events?run_id={ref.run_id}"
