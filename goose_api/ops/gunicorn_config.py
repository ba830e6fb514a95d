"""gunicorn settings, taken from goose-api's own settings (config.yaml, .env, GOOSE_API_*, $PORT).

Used as ``-c python:goose_api.ops.gunicorn_config`` (``goose-api serve``) or through the
project's ``gunicorn.conf.py``, which star-imports ``__all__``.

Metrics: every worker writes its numbers to prometheus-client's multiprocess
files in ``<data_dir>/prometheus`` (or an operator's PROMETHEUS_MULTIPROC_DIR).
The variable is set here, in the master, before prometheus_client is imported
anywhere (it picks its mode at import) and before any worker forks; the dir is
emptied once when the master starts and each exited worker is marked dead.
"""

import logging
import os
import signal
import sys
from pathlib import Path

from goose_api.backends import check_backend
from goose_api.errors import ConfigurationError
from goose_api.settings import Settings
from goose_api.storage.data_dir import DataDir

__all__ = ["bind", "worker_class", "workers", "threads", "worker_connections", "timeout", "graceful_timeout",
           "keepalive", "accesslog", "control_socket_disable", "on_starting", "child_exit", "post_worker_init",
           "worker_exit", "pre_request"]

BACKEND_UNUSABLE = 3  # gunicorn's own "the app could not load" status

_settings = Settings.load()
_metrics_dir = Path(_settings.env.get("PROMETHEUS_MULTIPROC_DIR")
                    or DataDir.at(_settings.data_dir, _settings.sessions_dir).prometheus)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

bind = f"{_settings.host}:{_settings.port}"
if ":" in _settings.host and not _settings.host.startswith("["):
    bind = f"[{_settings.host}]:{_settings.port}"
# gthread with a request pool that grows on demand and shrinks when idle (ops/gunicorn_worker.py):
# ``threads`` is a ceiling, not threads made at start; long-lived requests may hold only part of it
# (web/long_requests.py), so short ones always find a thread.
worker_class = "goose_api.ops.gunicorn_worker.ElasticThreadWorker"
workers = _settings.workers
threads = _settings.threads
worker_connections = _settings.threads + 1000  # plus up to 1000 kept-alive connections, which hold no thread
timeout = 120
graceful_timeout = _settings.graceful_timeout
keepalive = 5
accesslog = None  # goose-api logs one line per request itself
# gunicorn's control socket (for `gunicornc`) only where the control_socket setting asks for it, never
# gunicorn's default $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl.
control_socket_disable = not _settings.control_socket
if _settings.control_socket:
    control_socket = _settings.control_socket
    __all__.append("control_socket")


def on_starting(server):
    """Check the backend (a bad DATABASE_URL stops here, with one clear line); start the metrics from zero."""
    try:
        check_backend(_settings)
    except ConfigurationError as exc:
        server.log.error("goose-api cannot start: %s", exc)
        sys.stderr.flush()
        os._exit(BACKEND_UNUSABLE)  # before any worker: nothing else to stop, and no traceback
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """Drop the exited worker's live gauges (active runs, tool calls in progress)."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))


def _services(worker):
    app = getattr(worker, "wsgi", None)
    return getattr(app, "extensions", {}).get("goose_api") if app is not None else None


def post_worker_init(worker):
    """On SIGTERM, tell the app first (runs stop at their next saved step, event streams end), then let gunicorn
    stop as it does."""
    gunicorn_handler = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        services = _services(worker)
        if services is not None:
            services.begin_shutdown()
        gunicorn_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_exit(server, worker):
    """Stop this worker's runs and MCP servers so no child process outlives it; write out the last log lines."""
    services = _services(worker)
    if services is not None:
        services.close()
    for handler in logging.getLogger("goose_api").handlers:
        handler.flush()


def pre_request(worker, req):
    """A body declared over ``max_body_bytes`` with ``Expect: 100-continue``: no 100 Continue, and the connection
    closes after the answer.

    gunicorn writes the 100 itself before the app runs; without it the client never sends the body it
    announced and reads the app's 413 at once (``web/body_limit.py``). gunicorn keeps the flag in
    ``req._expected_100_continue``; tests/live/test_body_limit.py checks the handshake on the wire.
    """
    if not getattr(req, "_expected_100_continue", False):
        return
    declared = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")
    if declared.isdigit() and int(declared) > _settings.max_body_bytes:
        req._expected_100_continue = False
        req.must_close = True  # the body it announced will not come: nothing else may follow on this connection
