"""A stdio MCP server with one tool, ``get_weather``: a task the embedded 135M model can do with a tool.

Run as ``python tests/fakes/weather_server.py``. The answer names the city it
was asked about, so a test reads from the result which arguments arrived.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather", instructions="Current weather reports for cities.")


@server.tool(structured_output=False, description="Get the current weather in a city.")
def get_weather(city: str) -> str:
    return f"Sunny, 21 degrees Celsius in {city}"


if __name__ == "__main__":
    server.run("stdio")
