"""``/mcp``: the MCP server, after the app's key check (the key as ``Authorization: Bearer``).

A tool that follows a turn (``start_session``, ``reply``, ``confirm``) holds
this request's thread until the turn has its answer, as a blocking
``POST /session/start`` does, so it takes a long-lived slot
(``web/long_requests.py``) before the MCP server sees the request: past the
key's or the worker's limit the answer is 429 with ``Retry-After`` and nothing
starts. ``cancel`` waits for the run to stop only when a slot is free, as
``POST /session/<id>/cancel`` does; the MCP server learns which from
``SLOT_HEADER``, which this view always sets (a client's own is replaced).

``GET`` is 405, the answer the MCP spec gives a server that offers no stream
of its own: a stateless server never sends anything unasked, and the SDK's
stream for it stayed open for ever, a thread held outside any limit.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, current_app, request

from goose_api.storage import bounded_json
from goose_api.web import long_requests
from goose_api.web.current import caller
from goose_api.web.mcp_server.endpoint import PATH, McpEndpoint
from goose_api.web.mcp_server.tools import BLOCKING_TOOLS, SLOT_HEADER

blp = Blueprint("mcp", __name__)
EXTENSION = "goose_api.mcp_server"


@blp.route(PATH, methods=["POST", "DELETE"])
def mcp():
    """Streamable HTTP: a JSON-RPC message in, a JSON or SSE answer out (stateless)."""
    caller()  # the hooks identified the key; the tools identify it again from the same header
    endpoint: McpEndpoint = current_app.extensions[EXTENSION]
    environ = request.environ
    held = False
    if request.method == "POST":
        body = request.get_data(cache=True)  # read here, so the MCP server gets it again from a buffer
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        tools = called_tools(body)
        if tools & BLOCKING_TOOLS:
            long_requests.hold()
            held = True
        elif "cancel" in tools:
            held = long_requests.try_hold()
    environ[f"HTTP_{SLOT_HEADER.upper().replace('-', '_')}"] = "1" if held else "0"
    return Response.from_app(endpoint.wsgi(), environ)


def called_tools(body: bytes) -> set[str]:
    """The names of the tools a JSON-RPC message (or batch) calls; none if it is not JSON-RPC (the MCP server
    answers that)."""
    try:
        parsed: Any = bounded_json.loads(body)
    except ValueError:
        return set()
    messages = parsed if isinstance(parsed, list) else [parsed]
    return {str(message["params"].get("name")) for message in messages
            if isinstance(message, dict) and message.get("method") == "tools/call"
            and isinstance(message.get("params"), dict)}
