"""The ``goose-api`` command (``main``): run the server, or talk to one from a terminal."""

from goose_api.cli.main import main

__all__ = ["main"]
