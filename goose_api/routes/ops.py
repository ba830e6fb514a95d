"""Operations endpoints: liveness."""

from __future__ import annotations

from marshmallow import Schema, fields

from goose_api.routes.docs import ApiBlueprint

blp = ApiBlueprint("ops", __name__, description="Health and operations")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthSchema)
def health():
    """Liveness: answers while the process serves requests (no key needed)."""
    return {"status": "ok"}
