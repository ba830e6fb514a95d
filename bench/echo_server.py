"""The MCP server of the tool-call benchmark: one ``echo`` tool, over stdio or streamable HTTP.

Run as ``python bench/echo_server.py`` (stdio) or ``python bench/echo_server.py http PORT``
(streamable HTTP on 127.0.0.1:PORT, path ``/mcp``).
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("bench-echo", log_level="WARNING")


@server.tool(structured_output=False)
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
