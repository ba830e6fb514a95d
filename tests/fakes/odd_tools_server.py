"""A stdio MCP server whose tools have names MCP allows and provider APIs refuse, and one that answers an image.

Run as ``python tests/fakes/odd_tools_server.py``. Tools: ``search.issues``
(a dot), ``fs/read`` (a slash), a 70-character name (``LONG_NAME``), and
``screenshot`` (a 1x1 PNG image and a line of text). Each call also appends
its name to the file named by ``ODD_TOOLS_LOG``, so a test sees what ran.
"""

from __future__ import annotations

import base64
import os

from mcp.server.mcpserver import Image, MCPServer

LONG_NAME = "generate_the_quarterly_inventory_report_for_every_region_and_email_it"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
server = MCPServer("odd", instructions="Tools with names the provider APIs do not accept as they are.")


def ran(name: str) -> None:
    with open(os.environ["ODD_TOOLS_LOG"], "a", encoding="utf-8") as log:
        log.write(name + "\n")


@server.tool(name="search.issues", structured_output=False)
def search_issues(query: str) -> str:
    """Search the issues."""
    ran("search.issues")
    return f"2 issues match {query!r}"


@server.tool(name="fs/read", structured_output=False)
def fs_read(path: str) -> str:
    """Read a file."""
    ran("fs/read")
    return f"contents of {path}"


@server.tool(name=LONG_NAME, structured_output=False)
def long_named() -> str:
    """A tool whose name is longer than the provider APIs allow."""
    ran(LONG_NAME)
    return "report sent"


@server.tool(structured_output=False)
def screenshot() -> list:
    """Take a screenshot."""
    ran("screenshot")
    return ["the screen", Image(data=PNG, format="png")]


if __name__ == "__main__":
    server.run("stdio")
