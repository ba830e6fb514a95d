"""``goose-api ask``: one prompt, its answer as it arrives, tool approvals asked on the terminal.

Without ``--session`` a new session starts; ``--session ID`` replies to it
(``--new`` starts a session with that id), ``--last`` replies to the most
recently active one. The session id goes to stderr at the end, for the next
``--session``. Ctrl-C cancels the turn on the server before exiting (130).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TextIO

from goose_api.cli_output import TurnPrinter, ask_approval, event_json, shorten
from goose_api.client import GooseClient
from goose_api.client_errors import ConflictError, GooseApiError
from goose_api.client_events import ApprovalRequiredEvent, DoneEvent, Turn

OK, FAILED, INTERRUPTED = 0, 1, 130


@dataclass
class Terminal:
    out: TextIO
    err: TextIO
    answers: TextIO  # where approval answers are read (stdin)


def ask(client: GooseClient, args: argparse.Namespace, term: Terminal | None = None) -> int:
    term = term or Terminal(sys.stdout, sys.stderr, sys.stdin)
    session_id = args.session
    new = args.new or (session_id is None and not args.last)
    running: list[str] = []  # the session whose turn runs, once the server has said which
    try:
        if args.no_stream:
            turn = _blocking(client, args, term, session_id, new, running)
        else:
            turn = _streaming(client, args, term, session_id, new, running)
    except KeyboardInterrupt:
        _cancel(client, running, term)
        return INTERRUPTED
    return _outcome(turn, args, term)


def _streaming(client: GooseClient, args: argparse.Namespace, term: Terminal, session_id: str | None, new: bool,
               running: list[str]) -> Turn:
    """Print each event as it comes (or its JSON line); answer approvals as they are asked."""
    printer = TurnPrinter(term.out, term.err)
    stream = client.stream(args.prompt, session_id, new=new, working_dir=args.working_dir)
    running.append(stream.session_id)
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


def _blocking(client: GooseClient, args: argparse.Namespace, term: Terminal, session_id: str | None, new: bool,
              running: list[str]) -> Turn:
    """Run the turn in the background and wait for its answer; approvals are asked one by one."""
    if new:
        accepted = client.start(args.prompt, session_id, working_dir=args.working_dir, background=True)
    else:
        accepted = client.reply(args.prompt, session_id, background=True)
    running.append(accepted.session_id)
    turn = client.wait(accepted.session_id, accepted.run_id)  # type: ignore[union-attr]
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


def _cancel(client: GooseClient, running: list[str], term: Terminal) -> None:
    """Ctrl-C: stop the turn on the server too (a closed connection alone would not)."""
    term.err.write("\n")
    if not running:
        term.err.write("goose-api: interrupted\n")
        return
    try:
        answer = client.cancel(running[0])
        term.err.write(f"goose-api: interrupted; {answer['message']}\n")
    except ConflictError:
        term.err.write("goose-api: interrupted; the turn had already ended\n")
    except GooseApiError as exc:
        term.err.write(f"goose-api: interrupted; could not cancel the turn: {exc}\n")
