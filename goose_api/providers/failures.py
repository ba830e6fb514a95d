"""What the services' error answers mean, read from their bodies and headers.

``CONTEXT_OVERFLOW`` is one table for every provider: a prompt too long for
the window is worded differently by each service (and by each server behind
the OpenAI-compatible provider), but it always means the same thing: compact
the history and try again. A gateway may relay any service's words, so each
row applies to every provider. ``QUOTA`` rows are answers that look like rate
limits but that waiting will not fix (a spend limit, a billing problem).
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

# (service, lower-case fragment of its message)
CONTEXT_OVERFLOW: tuple[tuple[str, str], ...] = (
    ("openai", "context_length_exceeded"),
    ("openai", "maximum context length"),          # also DeepSeek, Groq, OpenRouter and vLLM's classic text
    ("anthropic", "prompt is too long"),
    ("anthropic", "input length and `max_tokens` exceed context limit"),
    ("xai", "maximum prompt length"),
    ("google", "exceeds the maximum number of tokens"),
    ("ollama", "exceeds the context length"),
    ("mistral", "too large for model with"),
    ("vllm", "is too long to fit into the model"),
    ("llama.cpp", "exceeds the available context size"),
    ("lm studio", "context length of only"),
    ("openai-compatible", "exceeds the context window"),
)
# (service, lower-case fragment): not retryable, whatever the status
QUOTA: tuple[tuple[str, str], ...] = (
    ("openai", "insufficient_quota"),
    ("anthropic", "you have reached your specified api usage limits"),
    ("anthropic", "credit balance is too low"),
    ("anthropic", "extra usage is required"),
    ("anthropic", "usage credits are required"),
)
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def matches(table: tuple[tuple[str, str], ...], text: str) -> bool:
    lowered = text.lower()
    return any(fragment in lowered for _service, fragment in table)


def duration_seconds(text: str) -> float | None:
    """``"6m0s"``, ``"1.5s"``, ``"20ms"``, ``"37s"`` (Go and protobuf durations) in seconds."""
    text = text.strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * UNIT_SECONDS[unit] for number, unit in parts)


def openai_rate_reset(headers: Mapping[str, str]) -> float | None:
    """The wait OpenAI's ``x-ratelimit-reset-*`` headers give for the exhausted limit(s).

    A limit whose ``x-ratelimit-remaining-*`` is 0 is the one that refused; when
    none says so, the soonest reset is the best guess.
    """
    resets = {kind: duration_seconds(headers.get(f"x-ratelimit-reset-{kind}") or "")
              for kind in ("requests", "tokens")}
    known = {kind: wait for kind, wait in resets.items() if wait is not None}
    if not known:
        return None
    exhausted = [wait for kind, wait in known.items() if headers.get(f"x-ratelimit-remaining-{kind}") == "0"]
    return max(exhausted) if exhausted else min(known.values())


def google_details(text: str) -> list[dict[str, Any]]:
    try:
        details = json.loads(text).get("error", {}).get("details")
    except (ValueError, AttributeError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def google_retry_delay(text: str) -> float | None:
    """``RetryInfo.retryDelay`` ("37s") from a Google error body."""
    for detail in google_details(text):
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return duration_seconds(str(detail.get("retryDelay") or ""))
    return None


def google_daily_quota(text: str) -> bool:
    """A ``QuotaFailure`` naming a per-day quota: it resets tomorrow, so retrying now is pointless."""
    for detail in google_details(text):
        if str(detail.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for violation in detail.get("violations") or []:
                if isinstance(violation, dict) and "perday" in str(violation.get("quotaId", "")).lower():
                    return True
    return False
