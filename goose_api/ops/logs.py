"""Logging set-up: one line per event, as text or JSON lines, written in batches."""

from __future__ import annotations

import json
import logging
import os
import threading
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


class BatchingStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes its lines in batches, at most ``interval`` seconds late.

    One ``write`` per line (the access log writes one per request) cost a
    quarter of a small request's time under load: a system call, a wake-up of
    whoever reads the pipe, and GIL hand-offs between the request threads
    (``bench/README.md``). Lines are collected and written together by a
    flusher thread every ``interval``, when ``limit`` bytes piled up, at once
    for WARNING and above, and on exit (``logging.shutdown`` and gunicorn's
    ``worker_exit`` flush). A process killed with SIGKILL loses at most the
    last ``interval`` of INFO lines.
    """

    def __init__(self, stream=None, interval: float = 0.1, limit: int = 64 * 1024):
        super().__init__(stream)
        self.interval = interval
        self.limit = limit
        self._pending: list[str] = []
        self._size = 0
        self._flusher_pid: int | None = None  # a forked worker starts its own flusher

    def emit(self, record: logging.LogRecord) -> None:
        """Called by ``Handler.handle`` with ``self.lock`` held."""
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.limit:
            self._write_pending(record)
        elif self._flusher_pid != os.getpid():
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_every_interval, name="log-flusher", daemon=True).start()

    def flush(self) -> None:
        with self.lock:
            self._write_pending()

    def _write_pending(self, record: logging.LogRecord | None = None) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            if record is not None:
                self.handleError(record)

    def _flush_every_interval(self) -> None:
        pid = os.getpid()
        while self._flusher_pid == pid:
            time.sleep(self.interval)
            self.flush()


def configure_logging(settings: Settings) -> None:
    """Configure the ``goose_api`` logger tree once per process."""
    logger = logging.getLogger("goose_api")
    logger.setLevel(settings.log_level.upper())
    if getattr(logger, "_goose_configured", None) == (settings.log_format, settings.log_level):
        return
    handler = BatchingStreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"))
    logger.handlers = [handler]
    logger.propagate = False
    logger._goose_configured = (settings.log_format, settings.log_level)
    for noisy in ("httpx2", "httpx", "mcp"):  # they log request URLs (tokens in query strings) at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
