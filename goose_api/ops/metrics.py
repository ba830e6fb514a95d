"""Prometheus metrics: HTTP requests, provider calls, tool calls, active runs, sessions on disk.

Under gunicorn every worker is its own process, so the numbers live in
prometheus-client's multiprocess files: ``goose_api.ops.gunicorn_config`` points
``PROMETHEUS_MULTIPROC_DIR`` at ``<data_dir>/prometheus`` (emptied when the
master starts, before any worker forks) and marks each exited worker dead, and
a scrape merges every worker's file. Without that variable (``python app.py``,
tests) the metrics live in this object's own registry. Either way the metric
objects belong to the ``Metrics`` that ``create_app`` builds: nothing is
registered globally.

``GET /metrics`` answers the Prometheus text format; with ``Accept:
application/json`` it answers the original goose-api's summary (see
``summary``).

Every label value comes from a small set: methods and routes are the app's
own, and the values that come from outside (a provider or model name, an
extension named by the tool the model asked for) are kept as they are for
the first ``LABEL_VALUES_KEPT`` distinct ones per label and process, then
counted as ``other``: each value is a time series every scrape carries.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from goose_api.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
LABEL_VALUES_KEPT = 32   # distinct values of an outside-chosen label, per label and process
LABEL_MAX_LENGTH = 100
OTHER = "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class SessionsOnDisk:
    """A collector counting session files at scrape time (never stale, nothing to keep in step)."""

    def __init__(self, count: Callable[[], int]):
        self.count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("goose_api_sessions", "Session files on disk", value=self.count())


class BoundedLabels:
    """Label values as given while fewer than ``LABEL_VALUES_KEPT`` are known per label, then ``other``."""

    def __init__(self, kept: int = LABEL_VALUES_KEPT):
        self.kept = kept
        self._lock = threading.Lock()
        self._known: dict[str, set[str]] = {}

    def __call__(self, label: str, value: str) -> str:
        value = str(value)[:LABEL_MAX_LENGTH]
        known = self._known.get(label)
        if known is not None and value in known:  # the common case: no lock
            return value
        with self._lock:
            known = self._known.setdefault(label, set())
            if value in known:
                return value
            if len(known) >= self.kept:
                return OTHER
            known.add(value)
            return value


class Metrics:
    def __init__(self, settings: Settings, count_sessions: Callable[[], int]):
        self.multiprocess_dir = settings.env.get(MULTIPROC_ENV) or None
        self.bounded = BoundedLabels()
        own = None if self.multiprocess_dir else CollectorRegistry()
        self._own = own
        self.requests = Counter("goose_api_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=own)
        self.latency = Histogram("goose_api_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=own)
        labels = ["provider", "model"]
        self.provider_calls = Counter("goose_api_provider_calls", "Provider calls (each retry counts)",
                                      labels, registry=own)
        self.provider_errors = Counter("goose_api_provider_errors", "Failed provider calls",
                                       labels + ["kind"], registry=own)
        self.provider_retries = Counter("goose_api_provider_retries", "Provider calls retried", labels,
                                        registry=own)
        self.provider_tokens = Counter("goose_api_provider_tokens", "Tokens reported by providers",
                                       labels + ["direction"], registry=own)
        self.provider_latency = Histogram("goose_api_provider_call_duration_seconds",
                                          "Time of a successful provider call", labels,
                                          buckets=LATENCY_BUCKETS, registry=own)
        self.tool_calls = Counter("goose_api_tool_calls", "Tool calls", ["extension"], registry=own)
        self.tool_errors = Counter("goose_api_tool_errors", "Tool calls that failed", ["extension"], registry=own)
        self.tool_latency = Histogram("goose_api_tool_call_duration_seconds", "Time of a tool call",
                                      ["extension"], buckets=LATENCY_BUCKETS, registry=own)
        self.tools_in_progress = Gauge("goose_api_tool_calls_in_progress", "Tool calls running now",
                                       ["extension"], multiprocess_mode="livesum", registry=own)
        self.active_runs = Gauge("goose_api_active_runs", "Agent turns running now",
                                 multiprocess_mode="livesum", registry=own)
        self._sessions = SessionsOnDisk(count_sessions)
        if own is not None:
            own.register(self._sessions)

    # --- recording -----------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def provider_event(self, kind: str, *, provider: str, model: str, **fields: Any) -> None:
        """``RetryingProvider``'s observer: counts calls, errors, retries, tokens and latency."""
        provider, model = self.bounded("provider", provider), self.bounded("model", model)
        if kind == "call":
            self.provider_calls.labels(provider, model).inc()
        elif kind == "error":
            self.provider_errors.labels(provider, model, self.bounded("kind", fields.get("error_kind") or "unknown")).inc()
        elif kind == "retry":
            self.provider_retries.labels(provider, model).inc()
        elif kind == "usage":
            for direction in ("input", "output"):
                tokens = fields.get(f"{direction}_tokens")
                if tokens:
                    self.provider_tokens.labels(provider, model, direction).inc(tokens)
            if fields.get("duration") is not None:
                self.provider_latency.labels(provider, model).observe(fields["duration"])

    @contextmanager
    def tool_call(self, extension: str) -> Iterator[None]:
        """Count one tool call of ``extension``: in progress while it runs, then its time and outcome."""
        extension = self.bounded("extension", extension)
        self.tool_calls.labels(extension).inc()
        in_progress = self.tools_in_progress.labels(extension)
        in_progress.inc()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.tool_errors.labels(extension).inc()
            raise
        finally:
            in_progress.dec()
            self.tool_latency.labels(extension).observe(time.monotonic() - started)

    @contextmanager
    def active_run(self) -> Iterator[None]:
        """Hold the active-runs gauge up for one agent turn (blocking, streamed or background)."""
        self.active_runs.inc()
        try:
            yield
        finally:
            self.active_runs.dec()

    # --- reading -------------------------------------------------------------------

    def registry(self) -> CollectorRegistry:
        """Every metric of every worker (multiprocess) or of this process, plus sessions on disk."""
        if self._own is not None:
            return self._own
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self._sessions)
        return registry

    def text(self) -> bytes:
        return generate_latest(self.registry())

    def pending_tool_calls(self) -> dict[str, int]:
        """Tool calls running now, by extension, summed over every worker."""
        pending: dict[str, int] = {}
        for family in self.registry().collect():
            if family.name == "goose_api_tool_calls_in_progress":
                for sample in family.samples:
                    name = sample.labels.get("extension", "")
                    pending[name] = pending.get(name, 0) + int(sample.value)
        return pending


def summary(session_messages: dict[str, int], pending: dict[str, int]) -> dict[str, Any]:
    """The original goose-api's ``/metrics`` JSON: messages per session, session count, pending tool calls."""
    return {"session_messages": session_messages, "active_sessions": len(session_messages),
            "pending_requests": pending}


class InstrumentedTools:
    """The agent's tool registry, with each call counted and timed by extension (the agent logs it).

    Wraps the registry instead of changing the agent loop: the loop sees the same
    ``ToolRegistry`` protocol, and every consumer (blocking, streamed, background)
    is measured alike.
    """

    def __init__(self, registry: Any, metrics: Metrics):
        self.registry = registry
        self.metrics = metrics

    def tools(self) -> list[Any]:
        return self.registry.tools()

    def instructions(self) -> dict[str, str]:
        return self.registry.instructions()

    def call_tool(self, name: str, arguments: dict[str, Any], timeout: float | None = None, **kwargs: Any):
        extension = name.split("__", 1)[0] if "__" in name else "unknown"
        with self.metrics.tool_call(extension):
            return self.registry.call_tool(name, arguments, timeout, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.registry, attribute)  # names(), details(), close() ... pass through

