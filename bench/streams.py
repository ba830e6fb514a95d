"""Short requests while 500 event streams are open: /health latency and a new turn's start, before and after.

goose-api runs under gunicorn (1 worker, no settings) against the provider
stub. A few sessions start turns whose provider call the stub holds open
(``ProviderStub.HOLD``), and 500 clients follow them with
``GET /session/<id>/events`` (raw sockets, each served once its first frame
arrived). With those open: 200 ``GET /health`` one after another (p50, p99),
50 ``GET /session/<id>``, a new turn started in the background (time to its
202 and to its provider call) and a blocking turn (time to its answer). A
request not answered in ``--timeout`` seconds counts as unanswered and ends
that measurement. Then the held turns are released and the streams end.
The same runs against goose-api as of ``--before`` (default: the commit
before issue 18, whose 16 request threads all went to the first 16 streams).

Goal (issue 18): with 500 streams open, ``/health`` p99 < 50 ms and a new turn starts at once.

Run: ``python -m bench.streams [--streams N] [--before REF|none]``.
"""

from __future__ import annotations

import argparse
import http.client
import selectors
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import report
from bench.concurrency import BEFORE
from bench.provider_stub import ProviderStub
from bench.report import ROOT
from bench.servers import Server, base_env, export_tree, gunicorn, memory_mib, scratch

HELD_SESSIONS = 5  # fits the 8 run threads of the older goose-api too
HEALTH_GOAL_MS = 50.0


def start_held(server: Server, n: int) -> str:
    response = server.post("/session/start", json={"prompt": f"{ProviderStub.HOLD.decode()} {n}", "async": True})
    response.raise_for_status()
    return response.json()["session_id"]


def open_streams(server: Server, session_ids: list[str], count: int, timeout: float) -> tuple[list, int]:
    """``count`` event streams spread over the sessions; how many got their first frame within ``timeout``."""
    parts = urlsplit(server.url)
    selector = selectors.DefaultSelector()
    sockets = []
    for n in range(count):
        sock = socket.create_connection((parts.hostname, parts.port))
        request = (f"GET /session/{session_ids[n % len(session_ids)]}/events HTTP/1.1\r\nHost: bench\r\n"
                   f"x-api-key: {server.headers['x-api-key']}\r\nAccept: text/event-stream\r\n\r\n")
        sock.sendall(request.encode())
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        sockets.append(sock)
    served, deadline = 0, time.monotonic() + timeout
    while served < count and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            if key.fileobj.recv(65536):
                served += 1
            selector.unregister(key.fileobj)
    selector.close()
    return sockets, served


def timed_gets(server: Server, path: str, times: int, timeout: float) -> dict:
    """``times`` GETs on one kept-alive connection; latencies in ms, and whether one went unanswered."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    latencies = []
    try:
        for _ in range(times):
            started = time.perf_counter()
            conn.request("GET", path, headers=server.headers)
            response = conn.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1000)
    except (OSError, http.client.HTTPException):
        return {"unanswered": True, "answered": len(latencies)}
    finally:
        conn.close()
    data = sorted(latencies)
    return {"unanswered": False, "answered": len(data), "p50_ms": report.percentile(data, 50),
            "p99_ms": report.percentile(data, 99), "max_ms": data[-1]}


def new_turns(server: Server, stub: ProviderStub, timeout: float) -> dict:
    """A turn started in the background (202, then its provider call) and a blocking one, while the streams hold."""
    out: dict = {}
    calls = len(stub.arrivals)
    started = time.perf_counter()
    try:
        response = server.post("/session/start", json={"prompt": "a new turn", "async": True}, timeout=timeout)
        out["async_202_ms"] = (time.perf_counter() - started) * 1000 if response.status_code == 202 else None
        deadline = time.monotonic() + timeout
        while len(stub.arrivals) <= calls and time.monotonic() < deadline:
            time.sleep(0.001)
        out["async_provider_call_ms"] = (stub.arrivals[calls] - started) * 1000 if len(stub.arrivals) > calls \
            else None
        started = time.perf_counter()
        response = server.post("/session/start", json={"prompt": "a blocking turn"}, timeout=timeout)
        out["blocking_ms"] = (time.perf_counter() - started) * 1000 if response.status_code == 200 else None
    except OSError:
        out.setdefault("async_202_ms", None)
    return out


def measure(work: Path, root: Path, streams: int, timeout: float) -> dict:
    with ProviderStub() as stub:
        with gunicorn("app:app", base_env(work, **stub.env()), work, root=root) as server:
            server.post("/session/start", json={"prompt": "warm up"}).raise_for_status()
            idle = memory_mib(server.pids())
            held = [start_held(server, n) for n in range(HELD_SESSIONS)]
            sockets, served = open_streams(server, held, streams, timeout)
            result = {"streams": streams, "streams_served": served, "idle": idle,
                      "with_streams": memory_mib(server.pids())}
            result["health"] = timed_gets(server, "/health", 200, timeout)
            result["session"] = timed_gets(server, f"/session/{held[0]}", 50, timeout)
            result.update(new_turns(server, stub, timeout))
            stub.release()
            for sock in sockets:
                sock.close()
    stream_kib = (result["with_streams"]["pss_mib"] - idle["pss_mib"]) * 1024 / max(1, served)
    result["memory_per_stream_kib"] = round(stream_kib, 1)
    return result


def describe(r: dict) -> str:
    health = r["health"]
    text = f"{r['streams_served']}/{r['streams']} streams served; /health "
    text += "unanswered" if health["unanswered"] else f"p50 {health['p50_ms']:.1f} ms, p99 {health['p99_ms']:.1f} ms"
    start = r.get("async_provider_call_ms")
    text += "; new turn: " + ("not started" if start is None else f"provider called after {start:.0f} ms")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as unanswered")
    parser.add_argument("--before", default=BEFORE, help="git ref to compare with, or 'none'")
    args = parser.parse_args()
    before = None if args.before == "none" else args.before
    started = time.monotonic()
    results = {}
    with scratch("streams") as work:
        trees = {"ours": ROOT, **({"before": export_tree(before, work / "before-tree")} if before else {})}
        for name, root in trees.items():
            results[name] = measure(work / name, root, args.streams, args.timeout)
            print(f"streams: {name}: {describe(results[name])}", flush=True)
    ours = results["ours"]
    health = ours["health"]
    met = not health["unanswered"] and health["p99_ms"] < HEALTH_GOAL_MS and \
        ours.get("async_provider_call_ms") is not None and ours["streams_served"] == args.streams
    rows = [report.row(f"streams: {args.streams} event streams open, /health p99 and a new turn (no settings)",
                       f"/health p99 < {HEALTH_GOAL_MS:g} ms; new turn starts at once",
                       f"before: {describe(results['before'])}" if before else "n/a", describe(ours), None, met),
            report.row("streams: memory per open event stream (PSS)", "report (no goal)", "n/a",
                       f"{ours['memory_per_stream_kib']:.0f} KiB", None, None)]
    report.write("streams", started=started, rows=rows, results=results,
                 parameters={"streams": args.streams, "held_sessions": HELD_SESSIONS, "timeout_s": args.timeout,
                             "before": before, "workers": 1, "ours": "no settings"},
                 notes=["streams follow turns whose provider call is held open; requests on one kept-alive "
                        "connection; a request unanswered within the timeout ends its measurement"])


if __name__ == "__main__":
    main()
