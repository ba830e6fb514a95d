"""The Flask app: the services of one worker process behind hooks, error handlers and blueprints."""

from __future__ import annotations

import logging

from flask import Flask

from goose_api.ops.logs import configure_logging
from goose_api.services import Services
from goose_api.settings import Settings
from goose_api.version import __version__
from goose_api.web.api import GooseApi
from goose_api.web.body_limit import BodyLimit
from goose_api.web.chat import routes as chat
from goose_api.web.chat.service import ChatService
from goose_api.web.errors import register_error_handlers
from goose_api.web.hooks import register_request_hooks
from goose_api.web.idempotency import register_idempotency
from goose_api.web.long_requests import LongRequestBudget, register_long_requests
from goose_api.web.mcp_server import routes as mcp_server
from goose_api.web.mcp_server.endpoint import McpEndpoint
from goose_api.web.request_body import BoundedJSONProvider
from goose_api.web.responses import routes as responses
from goose_api.web.responses.service import ResponseService
from goose_api.web.responses.store import FileResponseStore
from goose_api.web.routes import docs_ui, extensions, ops, provider, runs, sessions, transfer
from goose_api.web.throttle import AuthThrottle

log = logging.getLogger(__name__)

# No key needed: liveness, and the API's description (it holds no data).
PUBLIC_ENDPOINTS = frozenset({"ops.health", "api-docs.openapi_json", "docs.page", "docs.init", "docs.asset"})
# The dialects: OpenAI's APIs and MCP, described by their own specifications (not in /openapi.json).
DIALECT_PREFIXES = ("/v1/", "/mcp")


def build_app(settings: Settings) -> Flask:
    """The WSGI app over freshly built services (see ``goose_api.create_app``)."""
    configure_logging(settings)
    app = Flask("goose_api")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="goose-api",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json = BoundedJSONProvider(app)
    services = Services.build(settings)
    app.extensions["goose_api"] = services
    problem = services.providers.problem()
    if problem:
        log.error("provider not ready: %s", problem)
    api = GooseApi(app)
    register_error_handlers(app)
    throttle = AuthThrottle(services.stores.auth_failures(), settings.auth_failure_limit,
                            settings.auth_failure_window)
    services.on_close(throttle.close)
    register_request_hooks(app, services, throttle, PUBLIC_ENDPOINTS)
    register_idempotency(app, services, PUBLIC_ENDPOINTS, DIALECT_PREFIXES)
    register_long_requests(app, LongRequestBudget(*settings.long_request_limits))
    extensions.register_schemas(api.spec)
    ops.register_schemas(api.spec)
    for module in (sessions, runs, transfer, extensions, provider, ops):
        api.register_blueprint(module.blp)
    app.register_blueprint(docs_ui.blp)
    register_dialects(app, services)
    app.wsgi_app = BodyLimit(app.wsgi_app, settings.max_body_bytes)
    return app


def register_dialects(app: Flask, services: Services) -> None:
    """The OpenAI Responses and Chat Completions APIs and the MCP server, over the native routes' services."""
    app.extensions[responses.EXTENSION] = ResponseService(services, services.stores.responses
                                                          or FileResponseStore(services.data))
    app.extensions[chat.EXTENSION] = ChatService(services)
    endpoint = app.extensions[mcp_server.EXTENSION] = McpEndpoint(services)
    services.on_close(endpoint.close)
    for module in (responses, chat, mcp_server):
        app.register_blueprint(module.blp)
