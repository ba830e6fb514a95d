"""goose-api beside LangGraph's agent server and Agno's AgentOS, on the same provider stub, taking turns.

The peers are installed from PyPI into their own venvs (``bench/.peers/``,
``peer_servers.py``); each runs a ReAct agent with one ``echo`` tool
(``bench/peer_apps/``): LangGraph's in-memory ``langgraph dev`` server, and
Agno's AgentOS under uvicorn with its SQLite store. goose-api runs under
gunicorn with no settings but the provider and an ``echo`` MCP extension.
All servers run at once and take turns, turn for turn or burst for burst:

- turn overhead: a conversation of 10, then 100 messages; own time = the
  client's wall time − the stub's time for the turn's provider call (warm p50);
- a tool-call turn: two provider calls and one tool call, on a new conversation;
- 50 and 200 turns at once, each call taking 1 s: LangGraph with its default 10
  jobs and sized to 210 (``--n-jobs-per-worker``), the others as they come;
- memory (PSS of the server's processes) idle and after the bursts; goose-api's
  MCP extension processes apart;
- start-up: launch to the first turn answered;
- kill -9 mid-turn (the provider call held open), a restart on the same data,
  and what a client is then shown of that turn.

Ratios are peer / goose-api (above 1: goose-api is faster or smaller). README
lists what makes each comparison unfair.

Run: ``python -m bench.peers [--rounds N] [--counts 50 200]``.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench import report
from bench.peer_servers import Agno, GooseApi, LangGraph, Peer, Running, _conn
from bench.provider_stub import ProviderStub
from bench.servers import memory_mib, scratch

SIZES = (10, 100)
SLOW, TOOL, HOLD = (marker.decode() for marker in (ProviderStub.SLOW, ProviderStub.TOOL, ProviderStub.HOLD))


def own_time(peer: Peer, conn, stub: ProviderStub, conversation: str | None, prompt: str, calls: int) -> float:
    """Seconds of the server's own time for one turn that makes ``calls`` provider calls."""
    before = len(stub.durations)
    started = time.perf_counter()
    if peer.turn(conn, conversation, prompt) is None:
        raise RuntimeError(f"{peer.name}: a turn failed")
    wall = time.perf_counter() - started
    if not stub.wait_calls(before + calls) or len(stub.durations) != before + calls:
        raise RuntimeError(f"{peer.name}: expected {calls} provider calls, got {len(stub.durations) - before}")
    return wall - sum(stub.durations[before:])


def overhead(peers: dict[str, Peer], servers: dict[str, Running], stub: ProviderStub, rounds: int) -> dict:
    out: dict = {name: {} for name in peers}
    conns = {name: _conn(server.url) for name, server in servers.items()}
    for size in SIZES:
        conversations = {name: peer.seed(servers[name], peer.conversation(servers[name]) or f"bench_{size}", size)
                         for name, peer in peers.items()}
        for name in peers:
            out[name][f"conversation_{size}"] = conversations[name]
        samples: dict[str, list[float]] = {name: [] for name in peers}
        for n in range(rounds + 1):  # the first round warms up (caches, connections)
            for name, peer in peers.items():
                spent = own_time(peer, conns[name], stub, conversations[name], f"Next step {n}.", 1)
                if n:
                    samples[name].append(spent)
        for name in peers:
            out[name][f"turn_{size}_s"] = report.stats(samples[name])
    tools: dict[str, list[float]] = {name: [] for name in peers}
    for n in range(rounds + 1):
        for name, peer in peers.items():
            spent = own_time(peer, conns[name], stub, peer.conversation(servers[name]), f"{TOOL} {n}", 2)
            if n:
                tools[name].append(spent)
    for name in peers:
        out[name]["tool_turn_s"] = report.stats(tools[name])
        print(f"peers: {name}: " + ", ".join(f"{k} p50 {v['median'] * 1000:.1f} ms" for k, v in out[name].items()
                                             if isinstance(v, dict)), flush=True)
    return out


def burst(peer: Peer, server: Running, count: int) -> dict:
    """``count`` new conversations' first turns at once, each provider call taking the stub's slow delay."""
    barrier = threading.Barrier(count + 1)
    ends: list[float] = []
    failed = [0]
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = _conn(server.url)
        conversation = peer.conversation(server)
        conn.connect()
        barrier.wait()
        try:
            ok = peer.turn(conn, conversation, f"{SLOW} turn {n}") is not None
        except OSError:
            ok = False
        with lock:
            ends.append(time.perf_counter())
            failed[0] += not ok
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(600)
    return {"wall_s": max(ends, default=started) - started, "failed": failed[0]}


def bursts(peers: dict[str, Peer], servers: dict[str, Running], counts: list[int], rounds: int) -> dict:
    out: dict = {name: {} for name in peers}
    for _ in range(rounds):
        for count in counts:
            for name, peer in peers.items():
                outcome = burst(peer, servers[name], count)
                out[name].setdefault(f"burst_{count}", []).append(outcome)
                print(f"peers: {name:16} {count:4} at once: wall {outcome['wall_s']:6.2f} s, "
                      f"failed {outcome['failed']}", flush=True)
    for name in peers:
        for count in counts:
            runs = out[name][f"burst_{count}"]
            out[name][f"burst_{count}_s"] = report.stats(r["wall_s"] for r in runs)
            out[name][f"burst_{count}_failed"] = sum(r["failed"] for r in runs)
    return out


def crash(peer: Peer, server: Running, stub: ProviderStub, conversation: str) -> tuple[Running, dict]:
    """A turn of an older conversation whose provider call is held; kill -9 mid-turn; a restart on the same
    data; the conversation's runs as the API lists them before the kill and after the restart."""
    held = stub.held
    threading.Thread(target=lambda: peer.turn(_conn(server.url), conversation, f"{HOLD} crash"), daemon=True).start()
    deadline = time.monotonic() + 60
    while stub.held <= held and time.monotonic() < deadline:
        time.sleep(0.01)
    before = peer.run_statuses(server, conversation)
    server.kill()
    restarted = peer.start()
    return restarted, {"before_kill": before, "after_restart": peer.run_statuses(restarted, conversation)}


def crash_summary(outcome: dict) -> str:
    """The runs' statuses before the kill → after the restart, counted (``running`` before it is the held turn)."""
    def counted(statuses: list[str] | None) -> str:
        if statuses is None:
            return "conversation gone (404)"
        return ", ".join(f"{n} {status}" for status, n in Counter(statuses).items()) or "no runs"
    return f"{counted(outcome['before_kill'])} → {counted(outcome['after_restart'])}"


def measure(work: Path, rounds: int, counts: list[int]) -> dict:
    results: dict = {}
    with ProviderStub() as stub, ExitStack() as stack:
        peers: dict[str, Peer] = {
            "goose_api": GooseApi("goose_api", work / "goose_api", stub.url),
            "langgraph": LangGraph("langgraph", work / "langgraph", stub.url),
            "langgraph_210_jobs": LangGraph("langgraph_210_jobs", work / "langgraph_210", stub.url, {"jobs": 210}),
            "agno": Agno("agno", work / "agno", stub.url),
        }
        servers: dict[str, Running] = {}
        for name, peer in peers.items():
            peer.data.mkdir(parents=True, exist_ok=True)
            server = peer.start()
            stack.callback(lambda n=name: servers[n].stop())
            servers[name] = server
            started = time.perf_counter()
            peer.turn(_conn(server.url), peer.conversation(server), "the first turn")
            results[name] = {"startup_s": server.startup_s, "first_turn_s": server.startup_s +
                             time.perf_counter() - started}
        turn_peers = {name: peer for name, peer in peers.items() if name != "langgraph_210_jobs"}
        for name, entry in overhead(turn_peers, servers, stub, rounds).items():
            results[name].update(entry)
        for name, server in servers.items():
            results[name]["idle"] = memory_mib(peers[name].server_pids(server))
        for name, entry in bursts(peers, servers, counts, max(1, rounds // 5)).items():
            results[name].update(entry)
        time.sleep(1.0)
        for name, server in servers.items():
            results[name]["after_burst"] = memory_mib(peers[name].server_pids(server))
        results["goose_api"]["extensions"] = memory_mib(peers["goose_api"].pids_apart(servers["goose_api"]))
        for name in turn_peers:
            servers[name], results[name]["after_kill_9"] = crash(peers[name], servers[name], stub,
                                                                 results[name][f"conversation_{SIZES[0]}"])
            print(f"peers: {name}: after kill -9 mid-turn: {crash_summary(results[name]['after_kill_9'])}",
                  flush=True)
        stub.release()
    return results


def rows(results: dict, counts: list[int]) -> list[dict]:
    ours = results["goose_api"]
    peers = [name for name in results if name != "goose_api"]

    def row(label: str, key: str, unit: str = "ms", scale: float = 1000.0, names=None) -> dict:
        names = names or [p for p in peers if key in results[p]]
        value = lambda name: results[name][key]["median"] if isinstance(results[name][key], dict) \
            else results[name][key]  # noqa: E731
        baseline = "; ".join(f"{name} {value(name) * scale:.1f} {unit} ({value(name) / value('goose_api'):.2f}×)"
                             for name in names)
        return report.row(f"peers: {label}", "report (no goal)", baseline, f"{value('goose_api') * scale:.1f} {unit}",
                          min(value(n) for n in names) / value("goose_api"), None)

    out = [row(f"turn overhead, {size} messages (own time, warm p50)", f"turn_{size}_s") for size in SIZES]
    out.append(row("tool-call turn (own time, p50)", "tool_turn_s"))
    for count in counts:
        out.append(row(f"{count} turns at once, provider 1 s (wall)", f"burst_{count}_s", "s", 1.0))
    out.append(row("start-up to the first turn answered", "first_turn_s", "s", 1.0))
    memory = {name: results[name] for name in results}
    idle = "; ".join(f"{n} {memory[n]['idle']['pss_mib']:.0f} / {memory[n]['after_burst']['pss_mib']:.0f} MiB"
                     for n in peers)
    out.append(report.row("peers: memory idle / after the bursts (PSS)", "report (no goal)", idle,
                          f"{ours['idle']['pss_mib']:.0f} / {ours['after_burst']['pss_mib']:.0f} MiB "
                          f"(+ {ours['extensions']['pss_mib']:.0f} MiB MCP extensions)",
                          min(memory[n]["idle"]["pss_mib"] for n in peers) / ours["idle"]["pss_mib"], None))
    out.append(report.row("peers: runs listed before kill -9 mid-turn → after a restart (the running one is the killed turn)", "report (no goal)",
                          "; ".join(f"{n}: {crash_summary(results[n]['after_kill_9'])}" for n in peers
                                    if "after_kill_9" in results[n]), crash_summary(ours["after_kill_9"]), None, None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="turns per measurement (bursts: a fifth of it)")
    parser.add_argument("--counts", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    started = time.monotonic()
    with scratch("peers") as work:
        results = measure(work, args.rounds, args.counts)
    report.write("peers", started=started, rows=rows(results, args.counts), results=results,
                 parameters={"rounds": args.rounds, "counts": args.counts, "sizes": list(SIZES),
                             "peers": {"langgraph": "langgraph dev (in-memory runtime), 10 jobs; sized: 210 jobs",
                                       "agno": "AgentOS under uvicorn, SqliteDb"}},
                 notes=["ratios: peer / goose-api (above 1: goose-api is faster or smaller)",
                        "own time = client wall time − provider stub time"])


if __name__ == "__main__":
    main()
