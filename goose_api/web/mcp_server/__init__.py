"""goose-api as an MCP server: streamable HTTP at ``/mcp``, the API key as a Bearer token.

``tools.py`` is what an MCP host can do (start a session, reply, list and read
sessions, cancel, confirm), over the same services as the native routes;
``endpoint.py`` runs the official SDK's server (ASGI) on an event loop thread of
this worker process, bridged into the Flask app (WSGI) by a2wsgi, so the one
gunicorn ``web`` process serves it; ``routes.py`` mounts it after the key check.
"""
