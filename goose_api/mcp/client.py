"""A synchronous facade over one MCP server connection (official SDK, any transport).

``McpConnection.start`` submits a holder task to the process's MCP loop
(``loop.py``): it enters the transport and ``mcp.Client`` context managers,
lists the tools, reports ready, and then waits for ``stop`` so that the
contexts are exited in the task that entered them. Tool calls run as separate
tasks on the same loop; the calling thread waits on a queue that carries the
call's progress and log notifications and, last, its outcome, so a timeout or a
cancel is noticed at once and the call is abandoned.

Faults never hang a caller: a server that exits closes the stream (pending
calls fail with "connection closed"), a server that writes non-protocol text to
stdout makes the SDK deliver an exception that aborts the start or every call
in flight, and every wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import queue
import threading
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from goose_api.errors import ExtensionError, ToolCallFailed
from goose_api.mcp.hosts import HostPolicy, guarded_client
from goose_api.mcp.loop import LoopThread, event_loop
from goose_api.mcp.process import StderrTail, child_pid_with_stderr
from goose_api.storage.process import pid_alive

log = logging.getLogger(__name__)

CLIENT_INFO = mcp_types.Implementation(name="goose-api", version="1.0.0")
STOP_TIMEOUT = 10.0      # the SDK's stdio shutdown: 0.5 s flush + 2 s grace + 2 s TERM + 2 s reap
WAIT_SLICE = 0.05        # how often a waiting caller looks at its cancel event
MAX_TOOL_PAGES = 100     # a server whose tools/list never ends cannot hang a start
HTTP_TIMEOUT = 30.0      # connect/write for remote servers; reads are bounded by the call timeout
Notify = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server. ``env`` and ``headers`` may hold secrets: never log them."""

    transport: str                     # "stdio" | "sse" | "streamable_http"
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hosts: HostPolicy = field(default_factory=lambda: HostPolicy(()), compare=False)  # where a URL may connect

    def describe(self) -> str:
        """What to name in messages: the command, or the URL without credentials or query."""
        if self.transport == "stdio":
            return self.command or ""
        parts = urlsplit(self.url or "")
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class McpConnection:
    """One live MCP server: its tools, its instructions, and synchronous tool calls."""

    def __init__(self, name: str, spec: ServerSpec):
        self.name = name
        self.spec = spec
        self.tools: list[mcp_types.Tool] = []
        self.instructions: str | None = None
        self.pid: int | None = None
        self.fault: str | None = None       # why the connection is unusable, once it is
        self._loop: LoopThread | None = None
        self._client: Client | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopping = False
        self._finished = threading.Event()
        self._stderr = StderrTail()
        self._calls: set[asyncio.Task[Any]] = set()
        self._listeners: set[queue.Queue[tuple[str, Any]]] = set()

    # --- lifecycle ------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Connect, handshake and list tools, all within ``timeout`` seconds.

        Raises:
            ExtensionError: the server could not be started or reached; the message
                says why and, for stdio servers, ends with the tail of their stderr.
        """
        self._loop = event_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop.submit(self._hold(ready, timeout))
        try:
            ready.result(timeout + STOP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            self.stop()
            raise ExtensionError(self._failure(f"did not start within {timeout:g} s")) from None
        except ExtensionError:
            self._finished.wait(STOP_TIMEOUT)
            raise
        self._loop.connections.add(self)
        log.info("extension %s connected (%s, %d tools, pid %s)", self.name, self.spec.transport,
                 len(self.tools), self.pid)

    @property
    def alive(self) -> bool:
        if self.fault or self._client is None:
            return False
        if self.pid is not None and not pid_alive(self.pid):
            self.fault = "the server process exited"
            return False
        return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close the connection and stop the server process; safe to call more than once."""
        stop_all([self], timeout)

    def request_stop(self) -> None:
        if self._loop is not None and not self._finished.is_set():
            self._loop.call_soon(self._request_stop)

    def wait_stopped(self, timeout: float) -> None:
        if self._loop is None:
            return
        if not self._finished.wait(max(timeout, 0)):
            log.warning("extension %s did not shut down in time", self.name)
        self._loop.connections.discard(self)

    def _request_stop(self) -> None:
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def _hold(self, ready: concurrent.futures.Future[None], timeout: float) -> None:
        """The holder task: enter the contexts, report ready, wait for stop, exit the contexts.

        One cancel scope spans the connection's whole life (anyio scopes must exit in
        the order they were entered): its deadline bounds the start and is lifted once
        ready; ``stop`` and a fault cancel it, and the SDK's shielded shutdown runs.
        """
        reason = None
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as self._scope:
                async with AsyncExitStack() as stack:
                    stack.push_async_callback(self._stderr.aclose)
                    await self._connect(stack)
                    self._scope.deadline = math.inf
                    ready.set_result(None)
                    await anyio.sleep_forever()
            if not ready.done():
                reason = "the start was cancelled" if self._stopping else f"no answer within {timeout:g} s"
        except Exception as exc:
            reason = _describe(exc)
        finally:
            self._client = None
            self.fault = self.fault or ("the connection is closed" if ready.done() else reason)
            self._finished.set()
        # Reported only now, after the stack unwound, so the stderr tail is complete.
        if not ready.done():
            ready.set_exception(ExtensionError(self._failure(self.fault or reason or "unknown")))
        elif reason and not self._stopping:
            log.warning("extension %s connection ended: %s", self.name, reason)

    async def _connect(self, stack: AsyncExitStack) -> None:
        client = Client(await self._transport(stack), mode="auto", cache=None, client_info=CLIENT_INFO,
                        logging_callback=self._on_log, message_handler=self._on_message,
                        log_level="info")
        await stack.enter_async_context(client)
        self._stderr.close_writer()  # the child has its copy; ours would keep the pipe open
        if self.spec.transport == "stdio":
            self.pid = child_pid_with_stderr(self._stderr.pipe_id)
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        self.tools, self.instructions, self._client = tools, client.instructions, client

    async def _transport(self, stack: AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            params = StdioServerParameters(command=spec.command or "", args=list(spec.args),
                                           env=dict(spec.env), cwd=spec.cwd)
            return stdio_client(params, errlog=await self._stderr.open())
        if spec.transport == "sse":
            return sse_client(spec.url or "", headers=dict(spec.headers), timeout=HTTP_TIMEOUT,
                              sse_read_timeout=24 * 3600, httpx_client_factory=partial(guarded_client, spec.hosts))
        if spec.transport == "streamable_http":
            http = guarded_client(spec.hosts, headers=dict(spec.headers),
                                  timeout=httpx2.Timeout(HTTP_TIMEOUT, read=None))
            await stack.enter_async_context(http)
            return streamable_http_client(spec.url or "", http_client=http)
        raise ExtensionError(f"Unsupported MCP transport {spec.transport!r}")

    def _failure(self, reason: str) -> str:
        if self.spec.url:  # an HTTP error may quote the URL, which may carry a token
            reason = reason.replace(self.spec.url, self.spec.describe())
        message = f"Extension {self.name!r} failed to start ({self.spec.transport} {self.spec.describe()}): {reason}"
        tail = self._stderr.tail()
        return f"{message}\n--- server stderr (last lines) ---\n{tail}" if tail else message

    # --- notifications and faults (run on the loop) ----------------------------

    async def _on_log(self, params: mcp_types.LoggingMessageNotificationParams) -> None:
        self._broadcast({"type": "log", "extension": self.name, "level": params.level,
                         "logger": params.logger, "data": params.data})

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ValidationError) and self.spec.transport == "stdio":
            self._fail("the server wrote something that is not an MCP message to its stdout "
                       f"(stdout is reserved for the protocol; log to stderr): {_offending_input(message)}")
        elif isinstance(message, Exception):
            self._fail(f"the connection to the server failed: {_describe(message)}")

    def _fail(self, reason: str) -> None:
        """The stream is corrupt: abort the start and every call in flight."""
        if self.fault is None:
            self.fault = reason
            log.warning("extension %s failed: %s", self.name, reason[:200])
        if self._scope is not None and self._client is None:
            self._scope.cancel()  # still starting: give up now rather than at the deadline
        for task in list(self._calls):
            task.cancel()

    def _broadcast(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener.put(("notification", event))

    # --- tool calls -----------------------------------------------------------

    def call_tool(self, tool: str, arguments: dict[str, Any], timeout: float, *,
                  meta: dict[str, Any] | None = None, on_notification: Notify | None = None,
                  cancel_event: threading.Event | None = None) -> mcp_types.CallToolResult:
        """Call ``tool`` and wait at most ``timeout`` seconds (less if ``cancel_event`` is set).

        The server process is not checked here (``alive``): the registry has just
        done so, and a tool call should cost little more than its round trip.

        Raises:
            ToolCallFailed: timed out, cancelled, or the server failed (``self.fault`` says how).
        """
        if self.fault or self._client is None or self._loop is None:
            raise ToolCallFailed(f"Extension {self.name!r} is not running: {self.fault}")
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        future = self._loop.submit(self._call(tool, arguments, meta, events))
        future.add_done_callback(lambda _: events.put(("done", None)))
        try:
            self._wait(future, events, timeout, on_notification, cancel_event)
        finally:
            future.cancel()  # a no-op once done; abandons the call otherwise
        return self._outcome(future, tool)

    def _wait(self, future: concurrent.futures.Future[Any], events: queue.Queue[tuple[str, Any]],
              timeout: float, on_notification: Notify | None, cancel_event: threading.Event | None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if cancel_event is not None and cancel_event.is_set():
                raise ToolCallFailed("cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ToolCallFailed(f"Tool call to extension {self.name!r} timed out after {timeout:g} s")
            try:
                kind, payload = events.get(timeout=min(remaining, WAIT_SLICE) if cancel_event else remaining)
            except queue.Empty:
                continue
            if kind == "done":
                return
            if on_notification is not None:
                on_notification(payload)

    def _outcome(self, future: concurrent.futures.Future[mcp_types.CallToolResult],
                 tool: str) -> mcp_types.CallToolResult:
        try:
            return future.result(0)
        except concurrent.futures.CancelledError:
            raise ToolCallFailed(f"Extension {self.name!r} failed during {tool}: {self.fault}") from None
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                self.fault = self.fault or "the server closed the connection (did it crash?)"
                raise ToolCallFailed(self._crash_message(tool)) from None
            raise ToolCallFailed(f"Extension {self.name!r} rejected {tool}: {exc}") from None
        except Exception as exc:  # transport errors surface from the SDK as plain exceptions
            raise ToolCallFailed(f"Extension {self.name!r} failed during {tool}: {_describe(exc)}") from None

    def _crash_message(self, tool: str) -> str:
        tail = self._stderr.tail()
        message = f"Extension {self.name!r} crashed or closed the connection during {tool}"
        return f"{message}\n--- server stderr (last lines) ---\n{tail}" if tail else message

    async def _call(self, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None,
                    events: queue.Queue[tuple[str, Any]]) -> mcp_types.CallToolResult:
        client = self._client
        if client is None:
            raise MCPError(code=mcp_types.CONNECTION_CLOSED, message="Connection closed")
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        self._listeners.add(events)

        async def progress(value: float, total: float | None, message: str | None) -> None:
            events.put(("notification", {"type": "progress", "extension": self.name, "progress": value,
                                         "total": total, "message": message}))
        try:
            return await client.call_tool(tool, arguments, progress_callback=progress, meta=meta)
        finally:
            self._calls.discard(task)
            self._listeners.discard(events)


def stop_all(connections: list[McpConnection], timeout: float = STOP_TIMEOUT) -> None:
    """Stop connections in parallel: the whole takes at most ``timeout``, not one each."""
    deadline = time.monotonic() + timeout
    for connection in connections:
        connection.request_stop()
    for connection in connections:
        connection.wait_stopped(deadline - time.monotonic())


def _offending_input(exc: Exception) -> str:
    """The start of the line a server wrote that did not parse (pydantic keeps it)."""
    if isinstance(exc, ValidationError) and exc.errors():
        return repr(str(exc.errors()[0].get("input", ""))[:200])
    return _describe(exc)


def _describe(exc: BaseException) -> str:
    """A one-line reason from an exception, unwrapping anyio's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, MCPError) and exc.code == mcp_types.CONNECTION_CLOSED:
        return "the server closed the connection (did it exit?)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
