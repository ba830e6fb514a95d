"""The ``Idempotency-Key`` header on every POST: request hooks over ``IdempotencyStore``.

A POST with the header is claimed before its view runs: a repeat of a request
that was answered gets the stored answer again (``Idempotent-Replayed: true``);
a repeat of a turn that is still running attaches to that run (it waits for it,
streams it or answers 202, as the request asks) instead of starting another.
What is stored: every answer with a run, and every other answer below 500
except 409 and 429 (a busy session or a throttled client may succeed when
retried, so those keys are forgotten, as are keys of answers that failed).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, g, make_response, request

from goose_api.errors import BadRequest
from goose_api.runs.idempotency import ATTACH, REPLAY, fingerprint
from goose_api.runs.service import RunRef
from goose_api.services import Services

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
KEY_PATTERN = rf"^[!-~]{{1,{KEY_MAX_LENGTH}}}$"  # visible ASCII: what a client may send as a key
KEY_RE = re.compile(KEY_PATTERN)
REPLAYED_HEADERS = ("Content-Type", "Location", "Retry-After", "Preference-Applied")


def register_idempotency(app: Flask, svc: Services, public_endpoints: frozenset[str],
                         exempt_prefixes: tuple[str, ...] = ()) -> None:
    """``exempt_prefixes``: paths whose protocols have no such header (the OpenAI and MCP dialects)."""
    store = svc.idempotency

    @app.before_request
    def _claim():
        key = request.headers.get(HEADER)
        if key is None or request.method != "POST" or request.endpoint in public_endpoints or g.client is None \
                or request.path.startswith(exempt_prefixes):
            return None
        if not KEY_RE.fullmatch(key):
            raise BadRequest(f"{HEADER} must be 1-{KEY_MAX_LENGTH} visible ASCII characters (a UUID is a good choice)")
        target = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
        claim = store.claim(g.client.name, key, fingerprint("POST", target, request.get_data(cache=True)))
        if claim.action == REPLAY and "status" in (claim.entry.get("response") or {}):
            return _replayed(claim.entry["response"])
        if claim.action in (REPLAY, ATTACH):
            return _attached(svc, claim.entry["run"])
        g.idempotency = claim.path
        g.idempotency_store = store
        return None

    @app.after_request
    def _store(response: Response) -> Response:
        path = g.pop("idempotency", None)
        if path is None:
            return response
        has_run = g.get("idempotency_run") is not None
        if response.mimetype == "text/event-stream" and has_run:
            store.finish(path, {"stream": True})  # a repeat streams the run again
        elif response.mimetype == "text/event-stream" or \
                (not has_run and (response.status_code >= 500 or response.status_code in (409, 429))):
            store.drop(path)
        else:
            store.finish(path, {"status": response.status_code, "body": response.get_data(as_text=True),
                                "headers": {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}})
        return response

    @app.teardown_request
    def _forget(exc: BaseException | None) -> None:
        path = g.pop("idempotency", None)  # still here: the answer was never made
        if path is not None:
            store.drop(path)


def remember_run(ref: RunRef) -> None:
    """The request has a run: a repeat of it attaches to this run (call as soon as it exists)."""
    path = g.get("idempotency")
    if path is not None:
        g.idempotency_store.attach_run(path, ref.session_id, ref.run_id, ref.after)
        g.idempotency_run = ref


def _replayed(stored: dict[str, Any]) -> Response:
    response = Response(stored["body"], status=stored["status"])
    response.headers.update(stored["headers"])
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _attached(svc: Services, run: dict[str, Any]) -> Response:
    """The answer of the run the first request started, as this (identical) request asks for it."""
    from goose_api.web.answers import answer_turn  # the routes import this module

    body = request.get_json(silent=True)
    options = body if isinstance(body, dict) else {}
    ref = RunRef(run["session_id"], run["run_id"], int(run["after"]))
    response = make_response(answer_turn(svc.runs, ref, asynchronous=options.get("async") is True,
                                         stream=options.get("stream") is True))
    response.headers["Idempotent-Replayed"] = "true"
    return response
