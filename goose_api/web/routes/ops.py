"""Operations endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from flask import Response, jsonify, request

from goose_api.ops.metrics import CONTENT_TYPE, summary
from goose_api.ops.readiness import readiness
from goose_api.web.api import ApiBlueprint
from goose_api.web.current import caller, services
from goose_api.web.schemas.ops import HealthSchema, MetricsSummarySchema, ReadySchema

blp = ApiBlueprint("ops", __name__, description="Health, readiness and metrics")

METRICS_ANSWER = {"200": {"description": "Prometheus text, or the JSON summary for Accept: application/json",
                          "content": {"text/plain": {"schema": {"type": "string",
                                                                "description": "Prometheus text format 0.0.4"}},
                                      "application/json": {"schema": {"$ref": "#/components/schemas/MetricsSummary"}}}}}


def register_schemas(spec) -> None:
    """The metrics JSON answer as a named component (its route documents two content types by hand)."""
    spec.components.schema("MetricsSummary", schema=MetricsSummarySchema)


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.doc(security=[])
def health():
    """Liveness: answers while the process serves requests (no key needed)."""
    return {"status": "ok"}


@blp.route("/ready", methods=["GET"])
@blp.response(200, ReadySchema)
@blp.errors(401, 503)
def ready():
    """Readiness: provider configured, extensions running, data and sessions dirs writable (503 says why not)."""
    return {"status": "ready", "checks": readiness(services())}


@blp.route("/metrics", methods=["GET"])
@blp.doc(responses=METRICS_ANSWER)
@blp.errors(401)
def metrics():
    """Prometheus metrics of every worker; with Accept: application/json, the original goose-api summary."""
    svc = services()
    if request.accept_mimetypes.best_match([CONTENT_TYPE.split(";")[0], "application/json"]) == "application/json":
        ids = svc.access.visible([sid for sid, _ in svc.store.list_ids()], caller())
        body = summary(svc.store.message_counts(ids), svc.metrics.pending_tool_calls())
        return jsonify(MetricsSummarySchema().dump(body))
    return Response(svc.metrics.text(), content_type=CONTENT_TYPE)
