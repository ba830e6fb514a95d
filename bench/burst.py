"""Many turns at once against goose-api, as three kinds of client: blocking, async (202, then the events) and streamed.

Every client opens its connection first, then all send at the same moment
(a barrier); the wall time runs from the barrier to the last turn's end.
``http.client`` keeps the clients' own cost low; the server's answers are
read in full (a streamed turn to its ``done`` event).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

MODES = ("blocking", "async", "stream")
TIMEOUT = 300


def read_events(response: http.client.HTTPResponse) -> str | None:
    """Read an event stream to its terminal event; its type (``done``/``error``), or None if it ended first."""
    while True:
        line = response.readline()
        if not line:
            return None
        if line.startswith(b"event: ") and line[7:].strip() in (b"done", b"error"):
            kind = line[7:].strip().decode()
            response.read()  # the rest of the stream: it ends after its terminal event
            return kind


def one_turn(conn: http.client.HTTPConnection, mode: str, prompt: str, headers: dict[str, str]) -> bool:
    """One turn on ``conn``; True when it ended with an answer."""
    body: dict = {"prompt": prompt, **({"async": True} if mode == "async" else {}),
                  **({"stream": True} if mode == "stream" else {})}
    conn.request("POST", "/session/start", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    if mode == "blocking":
        response.read()
        return response.status == 200
    if mode == "stream":
        return response.status == 200 and read_events(response) == "done"
    accepted = json.loads(response.read() or b"{}")
    if response.status != 202:
        return False
    conn.request("GET", f"/session/{accepted['session_id']}/events?run_id={accepted['run_id']}", headers=headers)
    events = conn.getresponse()
    return events.status == 200 and read_events(events) == "done"


def burst(url: str, count: int, mode: str, headers: dict[str, str]) -> dict:
    """``count`` turns at once; seconds from the barrier to the last end, and how many failed."""
    parts = urlsplit(url)
    headers = {**headers, "Content-Type": "application/json"}
    barrier = threading.Barrier(count + 1)
    outcomes: list[tuple[bool, float]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
        conn.connect()
        barrier.wait()
        try:
            ok = one_turn(conn, mode, f"Turn {n}: say hello.", headers)
        except (OSError, http.client.HTTPException, ValueError):
            ok = False
        with lock:
            outcomes.append((ok, time.perf_counter()))
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(TIMEOUT)
    ok = sum(1 for good, _ in outcomes if good)
    return {"wall_s": max((t for _, t in outcomes), default=started) - started, "ok": ok, "failed": count - ok}
