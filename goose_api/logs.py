"""Logging set-up: one line per event, as text or JSON lines."""

from __future__ import annotations

import json
import logging
import time

from goose_api.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Configure the ``goose_api`` logger tree once per process."""
    logger = logging.getLogger("goose_api")
    logger.setLevel(settings.log_level.upper())
    if getattr(logger, "_goose_configured", None) == (settings.log_format, settings.log_level):
        return
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.propagate = False
    logger._goose_configured = (settings.log_format, settings.log_level)
    for noisy in ("httpx2", "httpx", "mcp"):  # they log request URLs (tokens in query strings) at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
