"""goose-api: a Goose-style AI agent behind a small REST API.

Importing the package starts nothing and imports little; ``create_app`` builds
everything one worker process needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from goose_api.settings import Settings

from goose_api.version import __version__

__all__ = ["create_app", "__version__"]


def create_app(settings: "Settings | None" = None) -> "Flask":
    """Build the WSGI app and the services one worker process uses.

    Raises:
        ConfigurationError: the settings cannot work (e.g. a public host without a key).
    """
    from goose_api.settings import Settings
    from goose_api.web.app import build_app

    return build_app(settings or Settings.load())
