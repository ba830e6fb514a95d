"""``/mcp``: the MCP server, after the app's key check (the key as ``Authorization: Bearer``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from goose_api.web.current import caller
from goose_api.web.mcp_server.endpoint import PATH, McpEndpoint

blp = Blueprint("mcp", __name__)
EXTENSION = "goose_api.mcp_server"


@blp.route(PATH, methods=["GET", "POST", "DELETE"])
def mcp():
    """Streamable HTTP: a JSON-RPC message in, a JSON or SSE answer out (stateless)."""
    caller()  # the hooks identified the key; the tools identify it again from the same header
    endpoint: McpEndpoint = current_app.extensions[EXTENSION]
    return Response.from_app(endpoint.wsgi(), request.environ)
