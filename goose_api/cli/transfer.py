"""``goose-api fork``, ``export`` and ``import``: moving sessions between servers and goose.

``export`` writes the file to stdout, or to ``-o FILE``; a ``sessions.db``
(``goose-sqlite``) only goes to a file or a pipe, never to a terminal.
``import`` guesses the format from the file's name (``.jsonl``, ``.json``,
``.db``/``.sqlite``) unless ``--format`` says it; ``-`` reads stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from goose_api.client import GooseClient

OK, USAGE = 0, 2
FORMAT_BY_SUFFIX = {".jsonl": "goose-jsonl", ".json": "json", ".db": "goose-sqlite", ".sqlite": "goose-sqlite",
                    ".sqlite3": "goose-sqlite"}


def fork(client: GooseClient, args: argparse.Namespace) -> int:
    answer = client.fork(args.id, args.at, new_session_id=args.new_id)
    print(json.dumps(answer) if args.json else answer["message"])
    return OK


def export(client: GooseClient, args: argparse.Namespace) -> int:
    if args.output is None and args.format == "goose-sqlite" and sys.stdout.isatty():
        return _usage("a sessions.db is binary; write it to a file with -o FILE")
    body = client.export(args.id, args.format)
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    if args.output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return OK
    try:
        Path(args.output).write_bytes(data)
    except OSError as exc:
        return _usage(f"cannot write {args.output}: {exc.strerror}")
    answer = {"session_id": args.id, "format": args.format, "file": args.output, "bytes": len(data)}
    print(json.dumps(answer) if args.json else f"Exported session {args.id} to {args.output} ({args.format})")
    return OK


def import_(client: GooseClient, args: argparse.Namespace) -> int:
    fmt = args.format or FORMAT_BY_SUFFIX.get(Path(args.file).suffix.lower(), "goose-jsonl")
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return _usage(f"cannot read {args.file}: {exc.strerror}")
    try:
        answer = client.import_session(data, fmt, session_id=args.new_id, working_dir=args.working_dir,
                                       source_id=args.source_id)
    except ValueError as exc:  # not UTF-8 text, or not JSON for format json
        return _usage(f"{args.file} is not a {fmt} file ({exc}); choose the format with --format")
    print(json.dumps(answer) if args.json else answer["message"])
    return OK


def _usage(message: str) -> int:
    print(f"goose-api: {message}", file=sys.stderr)
    return USAGE
