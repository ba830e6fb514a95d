"""A stdio MCP server that misbehaves on demand, for the registry's fault tests.

Run as ``python tests/fakes/misbehaving_server.py [MODE]``. MODE is one of:

- ``ok`` (default): a well-behaved server with tools ``echo``, ``crash``,
  ``hang``, ``wait``, ``garbage``, ``report`` and ``fail``; ``crash`` kills the process mid-call,
  ``wait`` says it started (a progress notification) and never returns.
- ``garbage``: prints non-JSON lines to stdout and never speaks MCP.
- ``fail-start``: writes a reason to stderr and exits 3 before the handshake.
- ``hang-start``: never answers the handshake.
"""

from __future__ import annotations

import os
import sys
import time

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

# The SDK diverts sys.stdout away from the protocol stream; keep a handle on the real one.
PROTOCOL_FD = os.dup(1)
server = MCPServer("misbehaving", instructions="A test server that fails on purpose.")


@server.tool(structured_output=False)
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool(structured_output=False)
def crash() -> str:
    """Exit the whole server process in the middle of the call."""
    sys.stderr.write("misbehaving: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(7)


@server.tool(structured_output=False)
def hang() -> str:
    """Never return (until the process is killed)."""
    while True:
        time.sleep(60)


@server.tool(structured_output=False)
async def wait(ctx: Context) -> str:
    """Report that the call started, then never return: a call in flight a test can see."""
    await ctx.report_progress(0, 1, "waiting")
    await anyio.sleep_forever()
    return "never"


@server.tool(structured_output=False)
def garbage() -> str:
    """Write a non-JSON line to stdout, corrupting the protocol stream, then hang."""
    os.write(PROTOCOL_FD, b"this is not json\n")
    while True:
        time.sleep(60)


@server.tool(structured_output=False)
async def report(steps: int, ctx: Context) -> str:
    """Send a progress and a log notification per step, then answer."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"log line {step}")
    return f"{steps} steps done"


@server.tool(structured_output=False)
def fail(reason: str) -> str:
    """Return an MCP error result with the given reason."""
    raise ToolError(reason)


def main(mode: str) -> None:
    if mode == "garbage":
        while True:
            sys.stdout.write("hello from a server that forgot the protocol\n")
            sys.stdout.flush()
            time.sleep(0.05)
    if mode == "fail-start":
        sys.stderr.write("misbehaving: cannot start, FAKE_CONFIG is not set\n")
        sys.exit(3)
    if mode == "hang-start":
        while True:
            time.sleep(60)
    server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ok")
