"""Tool-call overhead: a call through ``ExtensionRegistry.call_tool`` against a direct ``mcp.Client`` call.

Both talk to the same tiny server (``echo_server.py``, one ``echo`` tool), over
stdio (each client starts its own copy of the server) and over streamable HTTP
(one server, two connections). The direct call is timed inside its own event
loop (``await client.call_tool(...)``), with nothing around it; the registry
call is timed as the agent makes it: a synchronous call from a request thread,
through the registry's routing and liveness checks, the MCP loop thread and
back, with the result converted to goose content. Calls alternate in batches so
that noise hits both alike.

Goal (issue 7): ≤ 1.2× the direct call.

Run: ``python -m bench.tool_overhead [--batches N] [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bench import report
from bench.report import ROOT
from bench.servers import free_port, scratch
from goose_api.mcp.client import CLIENT_INFO
from goose_api.mcp.registry import ExtensionRegistry
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir

GOAL = 1.2
ECHO = str(ROOT / "bench" / "echo_server.py")
ARGS = {"text": "hello from the benchmark"}


class DirectClient:
    """An ``mcp.Client`` held open on an event loop in its own thread; batches are timed inside the loop."""

    def __init__(self, transport):
        self.transport = transport
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stop = asyncio.Event()
        self._ready: asyncio.Future | None = None
        self.client: Client | None = None
        self._holder = asyncio.run_coroutine_threadsafe(self._hold(), self.loop)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while self.client is None:
            if self._holder.done():
                self._holder.result()
            if time.monotonic() > deadline:
                raise RuntimeError("the direct client did not connect")
            time.sleep(0.01)

    async def _hold(self) -> None:
        transport = self.transport() if callable(self.transport) else self.transport
        async with Client(transport, mode="auto", cache=None, client_info=CLIENT_INFO) as client:
            await client.list_tools()
            self.client = client
            await self._stop.wait()

    async def _batch(self, count: int) -> list[float]:
        out = []
        for _ in range(count):
            started = time.perf_counter()
            result = await self.client.call_tool("echo", ARGS)
            out.append(time.perf_counter() - started)
            assert not result.is_error
        return out

    def batch(self, count: int) -> list[float]:
        return asyncio.run_coroutine_threadsafe(self._batch(count), self.loop).result(60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._holder.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def registry_batch(registry: ExtensionRegistry, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        content = registry.call_tool("echo__echo", ARGS)
        out.append(time.perf_counter() - started)
        assert content[0]["text"] == ARGS["text"]
    return out


@contextmanager
def http_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, ECHO, "http", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        import socket
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the echo server did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def compare(work: Path, transport: str, batches: int, size: int) -> dict:
    with contextmanager(lambda: (yield None))() if transport == "stdio" else http_server() as url:
        if transport == "stdio":
            config = {"type": "stdio", "name": "echo", "cmd": sys.executable, "args": [ECHO], "timeout": 30}
            direct_transport = StdioServerParameters(command=sys.executable, args=[ECHO], env=dict(os.environ))
        else:
            config = {"type": "streamable_http", "name": "echo", "uri": url, "timeout": 30}
            direct_transport = lambda: streamable_http_client(url, http_client=httpx2.AsyncClient())  # noqa: E731
        settings = Settings(data_dir=str(work / transport), extensions={"developer": {"enabled": False},
                                                                        "echo": {"enabled": True, **config}}, env={},
                            extension_hosts=("127.0.0.1",))  # the echo server listens on loopback
        registry = ExtensionRegistry(settings, DataDir.at(settings.data_dir, settings.sessions_dir).extensions)
        direct = DirectClient(direct_transport)
        try:
            registry_batch(registry, size)  # connect, warm up
            direct.batch(size)
            ours: list[float] = []
            theirs: list[float] = []
            pair_ratios: list[float] = []
            for _ in range(batches):
                direct_batch = direct.batch(size)
                registry_times = registry_batch(registry, size)
                pair_ratios.append(statistics.median(registry_times) / statistics.median(direct_batch))
                theirs += direct_batch
                ours += registry_times
        finally:
            direct.close()
            registry.close()
    ratio = statistics.median(pair_ratios)
    print(f"tool_overhead: {transport}: registry p50 {statistics.median(ours) * 1e3:.3f} ms, "
          f"direct p50 {statistics.median(theirs) * 1e3:.3f} ms, ratio {ratio:.2f}", flush=True)
    return {"registry_s": report.stats(ours), "direct_s": report.stats(theirs),
            "registry_p99_s": report.percentile(sorted(ours), 99),
            "direct_p99_s": report.percentile(sorted(theirs), 99), "ratio": ratio,
            "batch_ratios": report.stats(pair_ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    started = time.monotonic()
    results = {}
    with scratch("tool") as work:
        for transport in ("stdio", "streamable_http"):
            results[transport] = compare(work, transport, args.batches, args.batch_size)
    rows = [report.row(f"tool call via registry, {t.replace('_', ' ')} (p50)", f"≤ {GOAL}× direct",
                       f"{report.ms(r['direct_s']['median'])} (mcp.Client)", report.ms(r["registry_s"]["median"]),
                       r["ratio"], r["ratio"] <= GOAL) for t, r in results.items()]
    report.write("tool_overhead", started=started, rows=rows, results=results,
                 parameters={"batches": args.batches, "batch_size": args.batch_size, "tool": "echo",
                             "arguments": ARGS, "server": "bench/echo_server.py (mcp MCPServer)"},
                 notes=["direct calls are timed inside their event loop; registry calls from a plain thread, "
                        "as the agent makes them",
                        "ratio = median over batch pairs of (registry batch p50 / direct batch p50)"])


if __name__ == "__main__":
    main()
