"""``goose-api ask``: one prompt, its answer as it arrives, tool approvals asked on the terminal.

Without ``--session`` a new session starts; ``--session ID`` replies to it
(``--new`` starts a session with that id), ``--last`` replies to the most
recently active one; ``--if-busy enqueue`` waits for a running turn to end
first. The session id goes to stderr at the end, for the next ``--session``.
Ctrl-C cancels the turn on the server before exiting (130); a turn still
queued stays queued. ``goose-api resume ID`` shows an interrupted run driven on
the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable, TextIO

from goose_api.cli.output import TurnPrinter, ask_approval, event_json, shorten
from goose_api.client import GooseClient
from goose_api.client.errors import ConflictError, GooseApiError
from goose_api.client.events import Accepted, ApprovalRequiredEvent, DoneEvent, EventStream, Turn

OK, FAILED, INTERRUPTED = 0, 1, 130
QUEUED_NOTE = "[queued: the turn runs when the session's current one ends]"


@dataclass
class Terminal:
    out: TextIO
    err: TextIO
    answers: TextIO  # where approval answers are read (stdin)


def ask(client: GooseClient, args: argparse.Namespace, term: Terminal | None = None) -> int:
    session_id = args.session
    new = args.new or (session_id is None and not args.last)

    def begin(stream: bool) -> EventStream | Accepted:
        if stream:
            return client.stream(args.prompt, session_id, new=new, working_dir=args.working_dir, if_busy=args.if_busy)
        if new:
            return client.start(args.prompt, session_id, working_dir=args.working_dir, background=True)
        return client.reply(args.prompt, session_id, background=True, if_busy=args.if_busy)
    return _turn(client, args, term or Terminal(sys.stdout, sys.stderr, sys.stdin), begin)


def resume(client: GooseClient, args: argparse.Namespace, term: Terminal | None = None) -> int:
    """``goose-api resume ID``: drive an interrupted run on, shown as ``ask`` shows a turn."""
    def begin(stream: bool) -> EventStream | Accepted:
        accepted = client.resume(args.id, background=True)
        return client.events(args.id, run_id=accepted.run_id) if stream else accepted
    return _turn(client, args, term or Terminal(sys.stdout, sys.stderr, sys.stdin), begin)


def _turn(client: GooseClient, args: argparse.Namespace, term: Terminal,
          begin: Callable[[bool], EventStream | Accepted]) -> int:
    """Start a turn with ``begin(stream)``, show it, and say how it ended."""
    running: list[tuple[str, str | None]] = []  # the session and run, once the server has said which
    try:
        if args.no_stream:
            accepted = begin(False)
            running.append((accepted.session_id, accepted.run_id))
            turn = _blocking(client, args, term, accepted)
        else:
            stream = begin(True)
            running.append((stream.session_id, stream.run_id))
            turn = _streaming(client, args, term, stream)
    except KeyboardInterrupt:
        _cancel(client, running, term)
        return INTERRUPTED
    return _outcome(turn, args, term)


def _streaming(client: GooseClient, args: argparse.Namespace, term: Terminal, stream: EventStream) -> Turn:
    """Print each event as it comes (or its JSON line); answer approvals as they are asked."""
    printer = TurnPrinter(term.out, term.err)
    if stream.queued:
        printer.note(QUEUED_NOTE)
    try:
        for event in stream:
            if args.json:
                term.out.write(event_json(event) + "\n")
                term.out.flush()
            else:
                printer.event(event)
            if isinstance(event, ApprovalRequiredEvent):
                printer.end_line()
                action = ask_approval(event, term.err, term.answers)
                client.confirm(stream.session_id, event.call_id, action, background=True)
            elif isinstance(event, DoneEvent):
                printer.end_line()
                return event.turn
    except GooseApiError as exc:
        printer.end_line()
        if args.json:  # the run's error, as the last JSON line
            term.out.write(json.dumps({"id": None, "type": "error", "data": exc.body or {"message": exc.message}})
                           + "\n")
        raise
    raise GooseApiError("The event stream ended before the turn did", code="stream_ended")


def _blocking(client: GooseClient, args: argparse.Namespace, term: Terminal, accepted: Accepted) -> Turn:
    """Wait for the background turn's answer; approvals are asked one by one."""
    if accepted.status == "queued":
        term.err.write(QUEUED_NOTE + "\n")
    turn = client.wait(accepted.session_id, accepted.run_id)
    while turn.status == "waiting_approval" and turn.pending_approvals:
        pending = turn.pending_approvals[0]
        action = ask_approval(pending, term.err, term.answers)
        turn = client.confirm(turn.session_id, pending["id"], action)  # type: ignore[assignment]
    if args.json:
        term.out.write(json.dumps(turn.data) + "\n")
    else:
        term.out.write(turn.response + ("\n" if not turn.response.endswith("\n") else ""))
    term.out.flush()
    return turn


def _outcome(turn: Turn, args: argparse.Namespace, term: Terminal) -> int:
    """Warnings, a cancel, and the session id, on stderr; 1 when the turn did not finish."""
    for warning in turn.warnings:
        term.err.write(f"[warning] {shorten(warning, 200)}\n")
    if not args.json:
        term.err.write(f"[session {turn.session_id}]\n")
    if turn.status == "cancelled":
        term.err.write(f"goose-api: the turn was cancelled ({turn.cancelled})\n")
        return FAILED
    return OK


def _cancel(client: GooseClient, running: list[tuple[str, str | None]], term: Terminal) -> None:
    """Ctrl-C: stop our turn on the server too (a closed connection alone would not); never another's."""
    term.err.write("\n")
    if not running:
        term.err.write("goose-api: interrupted\n")
        return
    session_id, run_id = running[0]
    try:
        detail = client.session(session_id)
        if run_id is not None and detail.get("run_id") != run_id:  # not ours (yet): leave it alone
            queued = run_id in {q["run_id"] for q in detail.get("queued_runs") or []}
            term.err.write("goose-api: interrupted; " + (f"the turn stays queued (run {run_id})" if queued
                                                          else "the turn had already ended") + "\n")
            return
        answer = client.cancel(session_id)
        term.err.write(f"goose-api: interrupted; {answer['message']}\n")
    except ConflictError:
        term.err.write("goose-api: interrupted; the turn had already ended\n")
    except GooseApiError as exc:
        term.err.write(f"goose-api: interrupted; could not cancel the turn: {exc}\n")
