"""The MCP SDK's streamable HTTP server (ASGI), run inside a gunicorn worker next to the Flask app.

Stateless: every POST is a whole exchange (no ``Mcp-Session-Id`` to route to
the worker that holds a session), so any worker of any process serves any
request. The SDK's session manager runs on an event loop thread this worker
starts at the first ``/mcp`` request (never at import, never before the fork);
a2wsgi's ``ASGIMiddleware`` hands each request to it and streams the answer
back through the worker thread that took the request (gthread: one thread per
open stream, like the SSE routes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any

from a2wsgi import ASGIMiddleware
from mcp.server.transport_security import TransportSecuritySettings

from goose_api.services import Services
from goose_api.web.mcp_server.tools import GooseTools, build_server

log = logging.getLogger(__name__)

PATH = "/mcp"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class McpEndpoint:
    def __init__(self, services: Services):
        self.services = services
        self._lock = threading.Lock()
        self._wsgi: ASGIMiddleware | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._serving: concurrent.futures.Future | None = None

    def wsgi(self) -> Any:
        """The WSGI face of the MCP server (started on first use)."""
        with self._lock:
            if self._wsgi is None:
                self._start()
            return self._wsgi

    def _start(self) -> None:
        server = build_server(GooseTools(self.services))
        # The key guards every request (the Flask hooks); Host/Origin checks for DNS rebinding
        # would refuse the names a deployment is reached by, and CORS is the app's own.
        app = server.streamable_http_app(streamable_http_path=PATH, stateless_http=True,
                                         transport_security=TransportSecuritySettings(
                                             enable_dns_rebinding_protection=False))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="mcp-server", daemon=True)
        thread.start()
        ready: concurrent.futures.Future = concurrent.futures.Future()

        async def serve() -> None:
            self._stop = asyncio.Event()
            async with server.session_manager.run():
                ready.set_result(None)
                await self._stop.wait()
        self._serving = asyncio.run_coroutine_threadsafe(serve(), loop)
        ready.result(START_TIMEOUT)
        self._loop, self._thread = loop, thread
        self._wsgi = ASGIMiddleware(app, loop=loop)
        log.info("mcp server started path=%s", PATH)

    def close(self) -> None:
        """Stop the session manager and the loop thread (safe to call twice, or when never started)."""
        with self._lock:
            loop, self._loop, self._wsgi = self._loop, None, None
        if loop is None:
            return
        loop.call_soon_threadsafe(self._stop.set)
        try:
            self._serving.result(STOP_TIMEOUT)
        except (concurrent.futures.TimeoutError, asyncio.CancelledError):
            log.warning("mcp server did not stop within %s s", STOP_TIMEOUT)
        try:  # tasks the SDK left behind (sse-starlette's shutdown watcher): ended before the loop closes
            asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(STOP_TIMEOUT)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(STOP_TIMEOUT)
        if not self._thread.is_alive():
            loop.close()  # its self-pipe sockets too


async def _cancel_the_rest() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
