"""Retries for transient provider failures, and the hook metrics count them by.

``RetryingProvider`` wraps any provider. RATE_LIMIT and UNAVAILABLE are
retried up to ``settings.provider_retries`` times (INVALID_ANSWER once at
most) with exponential backoff and full jitter (a random wait in
``[0, base * 2**attempt]``), never longer than ``settings.provider_retry_max_wait``; a ``Retry-After`` the provider sent is
waited exactly, and one longer than the max wait ends the retries at once
(waiting less would only be refused again). AUTH, BAD_REQUEST, QUOTA,
CONTENT_FILTER and CONTEXT_LENGTH are raised at once: repeating the call
cannot fix them.
A stream is retried only before its first event: after that the caller has
shown text to someone and a silent restart would duplicate it.

``on_event(kind, **fields)`` is called with ``provider`` and ``model`` in every
event, plus:
  - ``"call"``: ``attempt`` (0 for the first try), ``stream`` (bool)
  - ``"error"``: ``error_kind``, ``http_status``, ``final`` (True when no retry follows)
  - ``"retry"``: ``attempt`` (the try about to start), ``wait`` (seconds), ``error_kind``
  - ``"usage"``: ``input_tokens``, ``output_tokens``, ``total_tokens`` (ints or None), ``duration`` (s)
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Callable, Iterator

from goose_api.conversation import Message
from goose_api.errors import ProviderError
from goose_api.providers.base import Provider, ProviderReply, StreamEvent, ToolSpec
from goose_api.settings import Settings

log = logging.getLogger("goose_api.providers")

Observer = Callable[..., None]


class RetryingProvider:
    """A provider that retries its inner provider's transient failures."""

    def __init__(self, inner: Provider, settings: Settings, *, on_event: Observer | None = None,
                 sleep: Callable[[float], None] = time.sleep, base_wait: float = 1.0,
                 jitter: Callable[[], float] = random.random):
        self.inner = inner
        self.retries = max(0, settings.provider_retries)
        self.max_wait = settings.provider_retry_max_wait
        self.base_wait = base_wait
        self.on_event = on_event
        self.sleep = sleep
        self.jitter = jitter

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def context_window(self) -> int | None:
        return getattr(self.inner, "context_window", None)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def complete(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> ProviderReply:
        """Raises: ProviderError once retrying cannot help any more."""
        attempt = 0
        while True:
            self._emit("call", attempt=attempt, stream=False)
            started = time.monotonic()
            try:
                reply = self.inner.complete(system, messages, tools)
            except ProviderError as error:
                self._back_off(error, attempt, may_retry=True)
                attempt += 1
                continue
            self._usage(reply, started)
            return reply

    def stream(self, system: str, messages: list[Message], tools: list[ToolSpec]) -> Iterator[StreamEvent]:
        """Like the inner stream; a failure before the first event is retried. Raises: ProviderError."""
        attempt = 0
        while True:
            self._emit("call", attempt=attempt, stream=True)
            started = time.monotonic()
            yielded = False
            try:
                for event in self.inner.stream(system, messages, tools):
                    if isinstance(event, ProviderReply):
                        self._usage(event, started)
                    yielded = True
                    yield event
                return
            except ProviderError as error:
                self._back_off(error, attempt, may_retry=not yielded)
                attempt += 1

    def wait_for(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before try ``attempt + 1``, or None to give up."""
        allowed = self.retries if error.max_retries is None else min(self.retries, error.max_retries)
        if not error.retryable or attempt >= allowed:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_wait else None
        return min(self.max_wait, self.jitter() * self.base_wait * (2 ** attempt))

    def _back_off(self, error: ProviderError, attempt: int, *, may_retry: bool) -> None:
        """Sleep before the next try, or re-raise ``error`` (from the caller's except block)."""
        wait = self.wait_for(error, attempt) if may_retry else None
        self._emit("error", error_kind=error.kind, http_status=error.http_status, final=wait is None)
        if wait is None:
            raise error
        log.warning("provider retry provider=%s model=%s kind=%s attempt=%d wait_s=%.2f",
                    self.name, self.model, error.kind, attempt + 1, wait)
        self._emit("retry", attempt=attempt + 1, wait=wait, error_kind=error.kind)
        self.sleep(wait)

    def _usage(self, reply: ProviderReply, started: float) -> None:
        usage = reply.usage
        self._emit("usage", input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                   total_tokens=usage.total_tokens, duration=time.monotonic() - started)

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, provider=self.name, model=self.model, **fields)
