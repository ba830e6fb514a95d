"""A streamable-HTTP MCP server that echoes request headers: proves configured headers are sent.

Run as ``python tests/fakes/header_echo_server.py PORT``; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("header-echo", instructions="Echoes HTTP request headers.", log_level="WARNING")


@server.tool(structured_output=False)
def header(name: str, ctx: Context) -> str:
    """The value of the request header ``name`` ("missing" when absent)."""
    return (ctx.headers or {}).get(name.lower(), "missing")


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
