"""Moving sessions: fork one, export one, import one (see ``sessions/transfer.py``)."""

from __future__ import annotations

from flask import Response

from goose_api.web.api import ApiBlueprint
from goose_api.web.current import caller, owned, services
from goose_api.web.schemas.transfer import (
    ExportQuerySchema,
    ForkResultSchema,
    ForkSchema,
    ImportResultSchema,
    ImportSchema,
)

blp = ApiBlueprint("transfer", __name__, description="Fork, export and import sessions")

EXPORT_DOC = {"responses": {"200": {"description": "the session file in the asked format", "content": {
    "application/jsonl": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}},
    "text/markdown": {"schema": {"type": "string"}},
    "application/vnd.sqlite3": {"schema": {"type": "string", "format": "binary"}}}}}}


@blp.route("/session/<session_id:session_id>/fork", methods=["POST"])
@blp.arguments(ForkSchema, required=False)
@blp.response(201, ForkResultSchema)
@blp.errors(400, 401, 404, 409, 413, 415)
def fork(body, session_id):
    """Copy a session (its first at_message messages) to a new session of the caller's."""
    copy = services().transfer.fork(owned(session_id), body.get("at_message"), body.get("session_id"), caller())
    return {"status": "success", "message": f"Session {session_id} forked as {copy.session_id} "
                                            f"({copy.message_count} of {copy.source_count} messages)",
            "session_id": copy.session_id, "source_id": session_id, "message_count": copy.message_count,
            "working_dir": copy.working_dir}


@blp.route("/session/<session_id:session_id>/export", methods=["GET"])
@blp.arguments(ExportQuerySchema, location="query")
@blp.errors(400, 401, 404)
@blp.doc(**EXPORT_DOC)
def export(query, session_id):
    """Download a session: goose-jsonl (default), json (goose's Session), markdown, or goose-sqlite (sessions.db)."""
    out = services().transfer.export(owned(session_id), query["format"])
    charset = "; charset=utf-8" if out.mimetype != "application/vnd.sqlite3" else ""  # the text formats are UTF-8
    return Response(out.body, content_type=out.mimetype + charset,
                    headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})


@blp.route("/sessions/import", methods=["POST"])
@blp.arguments(ImportSchema)
@blp.response(201, ImportResultSchema)
@blp.errors(400, 401, 409, 413, 415)
def import_session(body):
    """Store a session sent as goose-jsonl, json or goose-sqlite; every message is validated as goose's."""
    made = services().transfer.import_session(body["format"], body["data"], session_id=body.get("session_id"),
                                              working_dir=body.get("working_dir"), source_id=body.get("source_id"),
                                              owner=caller())
    return {"status": "success", "message": f"Imported {made.message_count} messages as session {made.session_id}",
            "session_id": made.session_id, "message_count": made.message_count, "working_dir": made.working_dir}
