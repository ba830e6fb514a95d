"""``python -m goose_api.postgres migrate [--from-files DATA_DIR SESSIONS_DIR]`` (``goose-api migrate`` runs it).

Brings the schema of the database at ``DATABASE_URL`` (or the ``database_url``
setting) up to date; with ``--from-files``, then copies a file installation
into it (``from_files.py``; idempotent). Exit codes: 0 done, 2 nothing to
migrate into (no or a bad URL, unreachable server, missing dirs).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from goose_api.errors import ConfigurationError
from goose_api.postgres import from_files, migrate
from goose_api.postgres.db import Database
from goose_api.settings import Settings

OK, USAGE = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="goose-api migrate", description="Bring the database's schema up to date.")
    parser.add_argument("command", nargs="?", choices=["migrate"], default="migrate")
    parser.add_argument("--from-files", nargs=2, metavar=("DATA_DIR", "SESSIONS_DIR"),
                        help="then copy a file installation (its data dir and goose sessions dir) into the database")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = Settings.load()
        if not settings.database_url:
            raise ConfigurationError("Nothing to migrate: set DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/DB)")
        if args.from_files:
            for given in args.from_files:
                if not Path(given).is_dir():
                    raise ConfigurationError(f"--from-files: {given} is not a directory")
        db = Database(settings.database_url, min_size=0, max_size=2).open()
    except ConfigurationError as exc:
        print(f"goose-api migrate: {exc}", file=sys.stderr)
        return USAGE
    try:
        applied = migrate.migrate(db)
        print(f"schema up to date ({len(migrate.migrations())} migrations; applied now: "
              f"{', '.join(f'{v:04d}' for v in applied) or 'none'})")
        if args.from_files:
            moved = from_files.move(db, Path(args.from_files[0]), Path(args.from_files[1]))
            print(moved.summary())
    finally:
        db.close()
    return OK


if __name__ == "__main__":
    sys.exit(main())
