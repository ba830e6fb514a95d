"""goose-api: a Goose-style AI agent behind a small REST API.

Importing the package starts nothing and imports little; ``create_app`` builds
everything one worker process needs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from goose_api.settings import Settings

__version__ = "0.1.0"

# No key needed: liveness, and the API's description (it holds no data).
PUBLIC_ENDPOINTS = frozenset({"ops.health", "api-docs.openapi_json", "docs.page", "docs.init", "docs.asset"})


def create_app(settings: "Settings | None" = None) -> "Flask":
    """Build the WSGI app and the services one worker process uses.

    Raises:
        ConfigurationError: the settings cannot work (e.g. a public host without a key).
    """
    from flask import Flask

    from goose_api.errors import register_error_handlers
    from goose_api.http_hooks import ChunkedBodyLimit, register_request_hooks
    from goose_api.logs import configure_logging
    from goose_api.routes import docs_ui, extensions, ops, provider, runs, sessions
    from goose_api.routes.docs import GooseApi
    from goose_api.services import Services
    from goose_api.settings import Settings

    settings = settings or Settings.load()
    configure_logging(settings)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="goose-api",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json.sort_keys = False
    services = Services.build(settings)
    app.extensions["goose_api"] = services
    problem = services.providers.problem()
    if problem:
        logging.getLogger("goose_api").error("provider not ready: %s", problem)
    api = GooseApi(app)
    register_error_handlers(app)
    register_request_hooks(app, services, PUBLIC_ENDPOINTS)
    extensions.register_schemas(api.spec)
    ops.register_schemas(api.spec)
    for module in (sessions, runs, extensions, provider, ops):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs_ui.blp)
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, settings.max_body_bytes)
    return app
