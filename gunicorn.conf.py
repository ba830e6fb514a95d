"""gunicorn settings, taken from goose-api's own settings (config.yaml, .env, GOOSE_API_*, $PORT)."""

from goose_api.settings import Settings

_settings = Settings.load()

bind = f"{_settings.host}:{_settings.port}"
if ":" in _settings.host and not _settings.host.startswith("["):
    bind = f"[{_settings.host}]:{_settings.port}"
worker_class = "gthread"
workers = _settings.workers
threads = max(16, _settings.threads)
timeout = 120
graceful_timeout = _settings.graceful_timeout
keepalive = 5
accesslog = None  # goose-api logs one line per request itself


def worker_exit(server, worker):
    """Stop this worker's MCP servers so no child process outlives it."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("goose_api") if app is not None else None
    if services is not None:
        services.close()
