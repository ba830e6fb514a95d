"""The ``goose-api`` command: run the server, or talk to one from a terminal.

    goose-api serve [--bind HOST:PORT] [--workers N]
    goose-api worker [--threads N]      (REDIS_URL: run queued turns)
    goose-api migrate [--from-files DATA_DIR SESSIONS_DIR]
    goose-api ask "prompt" [--session ID [--new]] [--last] [--if-busy POLICY] [--no-stream] [--json]
    goose-api sessions | show ID | rm ID | cancel ID | resume ID [--no-stream]
    goose-api fork ID [--at N] [--as NEW_ID] | export ID [--format F] [-o FILE] | import FILE [--format F]
    goose-api extensions [add TYPE NAME ... | remove NAME]
    goose-api provider [set PROVIDER [MODEL]]

Every command but ``serve``, ``worker`` and ``migrate`` takes ``--url``/``--key`` (default ``GOOSE_API_URL``/
``GOOSE_API_KEY``) and ``--json``. Exit codes: 0 done, 1 the server answered with
an error (or the turn failed or was cancelled), 2 wrong usage, 3 the server could not
be reached, 130 interrupted (Ctrl-C; a running turn is cancelled first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

from goose_api.cli.ask import ask, resume
from goose_api.cli.output import extensions_table, provider_text, session_text, sessions_table
from goose_api.cli.transfer import export, fork, import_
from goose_api.client import EXPORT_FORMATS, IF_BUSY, IMPORT_FORMATS, GooseClient
from goose_api.client.errors import ConnectionFailed, GooseApiError
from goose_api.version import __version__

OK, API_ERROR, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
GUNICORN_APP = "goose_api:create_app()"
GUNICORN_CONFIG = "python:goose_api.ops.gunicorn_config"
MIGRATE_MODULE = "goose_api.postgres"  # run as a module: the CLI imports no server code


def serve(args: argparse.Namespace) -> int:
    """Become gunicorn with the project's settings (they come from config.yaml, .env and GOOSE_API_*)."""
    command = [sys.executable, "-m", "gunicorn", GUNICORN_APP, "-c", GUNICORN_CONFIG]
    if args.bind:
        command += ["--bind", args.bind]
    if args.workers:
        command += ["--workers", str(args.workers)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return OK  # not reached: execv replaces this process


def worker(args: argparse.Namespace) -> int:
    """Become a turn worker (``python -m goose_api.worker``): it consumes the queue on REDIS_URL."""
    command = [sys.executable, "-m", "goose_api.worker"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return OK  # not reached: execv replaces this process


def migrate(args: argparse.Namespace) -> int:
    """Become ``python -m goose_api.postgres migrate``: the database's schema (and ``--from-files``) brought in."""
    command = [sys.executable, "-m", MIGRATE_MODULE]
    if args.from_files:
        command += ["--from-files", *args.from_files]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return OK  # not reached: execv replaces this process


def sessions(client: GooseClient, args: argparse.Namespace) -> int:
    found = client.sessions(limit=args.limit)
    print(json.dumps(found, indent=2) if args.json else sessions_table(found) if found else "No sessions yet.")
    return OK


def show(client: GooseClient, args: argparse.Namespace) -> int:
    detail = client.session(args.id, since=args.since)
    print(json.dumps(detail, indent=2) if args.json else session_text(detail))
    return OK


def remove(client: GooseClient, args: argparse.Namespace) -> int:
    answer = client.delete(args.id)
    print(json.dumps(answer) if args.json else answer["message"])
    return OK


def cancel(client: GooseClient, args: argparse.Namespace) -> int:
    answer = client.cancel(args.id)
    print(json.dumps(answer) if args.json else answer["message"])
    return OK


def extensions(client: GooseClient, args: argparse.Namespace) -> int:
    if args.action == "add":
        client.add_extension(extension_config(args))
        print(json.dumps({"added": args.name}) if args.json else f"Added extension {args.name}")
    elif args.action == "remove":
        client.remove_extension(args.name)
        print(json.dumps({"removed": args.name}) if args.json else f"Removed extension {args.name}")
    else:
        details = client.extension_details()
        print(json.dumps(details, indent=2) if args.json else extensions_table(details) if details
              else "No extensions.")
    return OK


def extension_config(args: argparse.Namespace) -> dict[str, Any]:
    """goose's ExtensionConfig from ``extensions add TYPE NAME ...``."""
    config: dict[str, Any] = {"type": args.type, "name": args.name}
    if args.type == "stdio":
        config.update(cmd=args.cmd, args=args.args)
    elif args.type in ("sse", "streamable_http"):
        config["uri"] = args.uri
    if getattr(args, "env", None):
        config["envs"] = dict(args.env)
    if getattr(args, "env_key", None):
        config["env_keys"] = args.env_key
    if getattr(args, "header", None):
        config["headers"] = dict(args.header)
    if args.timeout is not None:
        config["timeout"] = args.timeout
    return config


def provider(client: GooseClient, args: argparse.Namespace) -> int:
    config = client.set_provider(args.name, args.model) if args.action == "set" else client.provider()
    print(json.dumps(config) if args.json else provider_text(config))
    return OK


# --- the parser ----------------------------------------------------------------------

def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--url``/``--key``/``--json``, accepted before or after the command."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--url", default=default, help="server URL (default: $GOOSE_API_URL or http://127.0.0.1:8080)")
    parser.add_argument("--key", default=default, help="API key (default: $GOOSE_API_KEY)")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="machine-readable output on stdout")


def _add_extension_parsers(commands: Any) -> None:
    ext = commands.add_parser("extensions", help="list, add or remove extensions")
    _connection_options(ext, True)
    actions = ext.add_subparsers(dest="action", metavar="[add|remove]")
    add = actions.add_parser("add", help="add (or replace) an extension")
    kinds = add.add_subparsers(dest="type", required=True, metavar="TYPE")
    for kind, help_text in (("builtin", "a server shipped with goose-api (developer, memory, mcp_say)"),
                            ("stdio", "a command that speaks MCP on stdin/stdout"),
                            ("sse", "an MCP server at an SSE URL"),
                            ("streamable_http", "an MCP server at a streamable HTTP URL")):
        sub = kinds.add_parser(kind, help=help_text)
        _connection_options(sub, True)
        sub.add_argument("--timeout", type=float, help="seconds for the start and each tool call (default 300)")
        if kind != "builtin":
            sub.add_argument("--env", type=key_value, action="append", metavar="KEY=VALUE",
                             help="environment for the server (repeatable)")
            sub.add_argument("--env-key", action="append", metavar="NAME",
                             help="a variable copied from the server's environment (repeatable)")
        sub.add_argument("name")
        if kind == "stdio":
            sub.add_argument("cmd")
            sub.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments (all that follow)")
        elif kind != "builtin":
            sub.add_argument("uri")
        if kind == "streamable_http":
            sub.add_argument("--header", type=key_value, action="append", metavar="NAME=VALUE")
    remove_parser = actions.add_parser("remove", help="remove an extension and stop its server")
    _connection_options(remove_parser, True)
    remove_parser.add_argument("name")
    ext.set_defaults(handler=extensions)


def _add_transfer_parsers(commands: Any) -> None:
    fork_parser = commands.add_parser("fork", help="copy a session (or its first N messages) to a new one")
    export_parser = commands.add_parser("export", help="download a session as a file")
    import_parser = commands.add_parser("import", help="store a session file as a new session")
    for sub in (fork_parser, export_parser, import_parser):
        _connection_options(sub, True)
    fork_parser.add_argument("id", metavar="ID")
    fork_parser.add_argument("--at", type=int, metavar="N", help="copy the first N messages (default: all)")
    export_parser.add_argument("id", metavar="ID")
    export_parser.add_argument("--format", choices=EXPORT_FORMATS, default="goose-jsonl",
                               help="default goose-jsonl (goose's session file); goose-sqlite is a sessions.db")
    export_parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    import_parser.add_argument("file", metavar="FILE", help="the session file (- reads stdin)")
    import_parser.add_argument("--format", choices=IMPORT_FORMATS, help="default: by the file's name "
                                                                        "(.jsonl, .json, .db)")
    import_parser.add_argument("--working-dir", metavar="DIR", help="its working dir on the server (absolute)")
    import_parser.add_argument("--source-id", metavar="ID", help="goose-sqlite: the session of the database to take")
    for sub in (fork_parser, import_parser):
        sub.add_argument("--as", dest="new_id", metavar="NEW_ID", help="the new session's id (default: goose-style)")
    fork_parser.set_defaults(handler=fork)
    export_parser.set_defaults(handler=export)
    import_parser.set_defaults(handler=import_)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="goose-api", description="Run goose-api, or talk to it from a terminal.",
                                     epilog="exit codes: 0 ok, 1 server or API error, 2 usage error, "
                                            "3 server unreachable, 130 interrupted")
    parser.add_argument("--version", action="version", version=f"goose-api {__version__}")
    _connection_options(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_parser = commands.add_parser("serve", help="run the server (gunicorn with the project's settings)")
    serve_parser.add_argument("--bind", metavar="HOST:PORT", help="where to listen (default: host/port settings)")
    serve_parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: workers setting)")
    worker_parser = commands.add_parser("worker", help="run queued turns (REDIS_URL; the Procfile's worker: line)")
    worker_parser.add_argument("--threads", type=int, metavar="N",
                               help="turns run at once (default: worker_threads setting)")

    migrate_parser = commands.add_parser("migrate", help="bring the database's schema up to date (DATABASE_URL)")
    migrate_parser.add_argument("--from-files", nargs=2, metavar=("DATA_DIR", "SESSIONS_DIR"),
                                help="then copy a file installation into the database (idempotent)")

    ask_parser = commands.add_parser("ask", help="send a prompt and show the answer as it arrives")
    _connection_options(ask_parser, True)
    ask_parser.add_argument("prompt")
    which = ask_parser.add_mutually_exclusive_group()
    which.add_argument("--session", metavar="ID", help="reply to this session (with --new: start it)")
    which.add_argument("--last", action="store_true", help="reply to the most recently active session")
    ask_parser.add_argument("--new", action="store_true", help="start a new session (the default without --session)")
    ask_parser.add_argument("--working-dir", metavar="DIR", help="a new session's working dir (absolute)")
    ask_parser.add_argument("--if-busy", choices=IF_BUSY, help="when the session runs a turn: reject (an error, "
                            "the default), enqueue (run after it) or interrupt (cancel it, then run)")
    ask_parser.add_argument("--no-stream", action="store_true", help="print only the final answer")
    ask_parser.set_defaults(handler=ask)

    resume_parser = commands.add_parser("resume", help="continue a run that a crash or restart interrupted")
    _connection_options(resume_parser, True)
    resume_parser.add_argument("id", metavar="ID")
    resume_parser.add_argument("--no-stream", action="store_true", help="print only the final answer")
    resume_parser.set_defaults(handler=resume)

    for name, handler, help_text in (("show", show, "a session's state and messages"),
                                     ("rm", remove, "delete a session"),
                                     ("cancel", cancel, "stop a session's running turn")):
        sub = commands.add_parser(name, help=help_text)
        _connection_options(sub, True)
        sub.add_argument("id", metavar="ID")
        sub.set_defaults(handler=handler)
    commands.choices["show"].add_argument("--since", type=int, metavar="N", help="only the messages after the first N")

    list_parser = commands.add_parser("sessions", help="list sessions, newest first")
    _connection_options(list_parser, True)
    list_parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50)")
    list_parser.set_defaults(handler=sessions)

    _add_transfer_parsers(commands)
    _add_extension_parsers(commands)

    provider_parser = commands.add_parser("provider", help="show or switch the LLM provider")
    _connection_options(provider_parser, True)
    provider_actions = provider_parser.add_subparsers(dest="action", metavar="[set]")
    set_parser = provider_actions.add_parser("set", help="switch provider (and model) for every worker")
    _connection_options(set_parser, True)
    set_parser.add_argument("name", metavar="PROVIDER")
    set_parser.add_argument("model", nargs="?", metavar="MODEL")
    provider_parser.set_defaults(handler=provider)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ask" and args.new and args.last:
        parser.error("--new and --last do not go together")
    if args.command == "ask" and args.if_busy and (args.new or not (args.session or args.last)):
        parser.error("--if-busy is for a reply: use it with --session ID or --last")
    if args.command == "serve":
        return serve(args)
    if args.command == "worker":
        return worker(args)
    if args.command == "migrate":
        return migrate(args)
    handler: Callable[[GooseClient, argparse.Namespace], int] = args.handler
    try:
        with GooseClient(args.url, args.key) as client:
            return handler(client, args)
    except KeyboardInterrupt:
        print("goose-api: interrupted", file=sys.stderr)
        return INTERRUPTED
    except ConnectionFailed as exc:
        print(f"goose-api: {exc.message}", file=sys.stderr)
        return UNREACHABLE
    except GooseApiError as exc:
        print(f"goose-api: {exc}", file=sys.stderr)
        return API_ERROR
    except BrokenPipeError:  # the reader went away (`goose-api sessions | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail
        return OK
