"""The MCP tools: delegate work to a goose agent, with its text deltas as progress notifications.

Each tool runs on a worker thread (the services block); the caller is the key
in the request's ``Authorization: Bearer`` header, identified again here (the
Flask hooks checked it already), and reaches only its own sessions. An error
of the API becomes an ``isError`` result whose text says what went wrong.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from goose_api.agent.approvals import ACTIONS
from goose_api.auth import Client, presented_key
from goose_api.errors import ApiError, BadRequest
from goose_api.runs.service import RunRef
from goose_api.services import Services
from goose_api.version import __version__

log = logging.getLogger(__name__)

LIVENESS_CHECK = 1.0
ENDS = frozenset({"done", "error", "approval_required"})
BLOCKING_TOOLS = frozenset({"start_session", "reply", "confirm"})  # they follow a turn to its answer
SLOT_HEADER = "X-Goose-Api-Slot"  # "1": the view (routes.py) holds a long-lived slot for this request
INSTRUCTIONS = ("Delegate work to a goose agent: start_session with a prompt (the agent uses its own tools and "
                "answers), reply to continue a session, list_sessions and read_session to look back, cancel to "
                "stop a turn, confirm to allow or deny a tool call waiting for approval. The agent's text arrives "
                "as progress notifications while it works.")

Progress = Callable[[str], None]


class GooseTools:
    """The tools' work, synchronous, for one worker process's services."""

    def __init__(self, services: Services):
        self.services = services

    def start_session(self, client: Client, prompt: str, session_id: str | None, working_dir: str | None,
                      progress: Progress) -> dict[str, Any]:
        ref = self.services.turns.start(prompt, client, session_id, working_dir, stream=True)
        return self._answer(ref, progress)

    def reply(self, client: Client, session_id: str, prompt: str, progress: Progress) -> dict[str, Any]:
        ref = self.services.turns.reply(prompt, self.services.access.check(session_id, client), stream=True,
                                         client=client.name)
        return self._answer(ref, progress)

    def confirm(self, client: Client, session_id: str, call_id: str, action: str,
                progress: Progress) -> dict[str, Any]:
        if action not in ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(ACTIONS)}")
        ref = self.services.runs.confirm(self.services.access.check(session_id, client), call_id, action)
        return self._answer(ref, progress)

    def cancel(self, client: Client, session_id: str, wait: bool = True) -> dict[str, Any]:
        record, final = self.services.runs.cancel(self.services.access.check(session_id, client), wait=wait)
        return {"session_id": session_id, "run_id": record["run_id"],
                "cancelled": (final or {}).get("cancelled"), "stopped": final is not None}

    def list_sessions(self, client: Client, limit: int, offset: int) -> dict[str, Any]:
        return self.services.catalog.list(client, max(1, min(limit, 100)), max(0, offset))

    def read_session(self, client: Client, session_id: str, since: int) -> dict[str, Any]:
        return self.services.catalog.describe(self.services.access.check(session_id, client), max(0, since))

    def _answer(self, ref: RunRef, progress: Progress) -> dict[str, Any]:
        """Follow the run, each text delta to ``progress``, until its answer (done, or waiting for approval)."""
        runs = self.services.runs
        _, events_log = runs.log_of(ref.session_id, ref.run_id)
        reader = events_log.follow(ref.after)
        ended = False
        while not ended:
            events = reader.wait(LIVENESS_CHECK, runs.poll)
            for event in events:
                if event.type == "message" and event.data.get("text"):
                    progress(event.data["text"])
                ended = ended or event.type in ENDS
            if not events:
                runs.status(ref.session_id)  # a dead owner's run gets its error event here
        answer = runs.wait(ref)  # the answer is in the log now: done, waiting for approval, or the error raised
        return {key: answer[key] for key in ("status", "session_id", "run_id", "response", "usage",
                                             "pending_approvals", "cancelled") if key in answer}


def build_server(tools: GooseTools) -> MCPServer:
    server = MCPServer("goose-api", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")

    def identify(ctx: Context) -> Client:
        return tools.services.keys.identify(presented_key(ctx.headers or {}))

    async def run(work: Callable[..., dict[str, Any]], ctx: Context, *args: Any) -> dict[str, Any]:
        count = 0

        def progress(text: str) -> None:
            nonlocal count
            count += 1
            anyio.from_thread.run(ctx.report_progress, count, None, text)
        try:
            return await anyio.to_thread.run_sync(lambda: work(identify(ctx), *args, progress))
        except ApiError as exc:
            raise ToolError(exc.message) from None

    async def run_plain(work: Callable[..., dict[str, Any]], ctx: Context, *args: Any) -> dict[str, Any]:
        try:
            return await anyio.to_thread.run_sync(lambda: work(identify(ctx), *args))
        except ApiError as exc:
            raise ToolError(exc.message) from None

    @server.tool()
    async def start_session(prompt: str, ctx: Context, session_id: str | None = None,
                            working_dir: str | None = None) -> dict[str, Any]:
        """Start a goose session with a prompt; answers when the agent has (or waits for a tool approval)."""
        return await run(tools.start_session, ctx, prompt, session_id, working_dir)

    @server.tool()
    async def reply(session_id: str, prompt: str, ctx: Context) -> dict[str, Any]:
        """Send the next prompt to a session of yours."""
        return await run(tools.reply, ctx, session_id, prompt)

    @server.tool()
    async def confirm(session_id: str, call_id: str, ctx: Context, action: str = "allow_once") -> dict[str, Any]:
        """Allow (allow_once, always_allow) or deny a tool call waiting for approval; the turn goes on."""
        return await run(tools.confirm, ctx, session_id, call_id, action)

    @server.tool()
    async def cancel(session_id: str, ctx: Context) -> dict[str, Any]:
        """Stop the turn running on a session (at its next step)."""
        wait = (ctx.headers or {}).get(SLOT_HEADER) == "1"  # no slot free: answer at once, the run stops anyway
        return await run_plain(tools.cancel, ctx, session_id, wait)

    @server.tool()
    async def list_sessions(ctx: Context, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """Your sessions, newest first."""
        return await run_plain(tools.list_sessions, ctx, limit, offset)

    @server.tool()
    async def read_session(session_id: str, ctx: Context, since: int = 0) -> dict[str, Any]:
        """A session of yours: its state, pending approvals and messages (after the first ``since``)."""
        return await run_plain(tools.read_session, ctx, session_id, since)

    return server
