"""The official ``openai`` SDK pointed at goose-api: in-process (over WSGI) or at a live server.

Clients validate every answer against the SDK's own pydantic models
(``_strict_response_validation``), so a field of the wrong type or a missing
required one fails the test. Streamed events are checked with ``check_event``.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.support.app import API_KEY

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


def wsgi_client(app, key: str = API_KEY) -> openai.OpenAI:
    """The SDK over Flask's WSGI app (no server; a streamed body arrives whole)."""
    http = httpx2.Client(transport=httpx2.WSGITransport(app=app), base_url="http://goose.test")
    return openai.OpenAI(api_key=key, base_url="http://goose.test/v1", http_client=http, max_retries=0,
                         _strict_response_validation=True)


def live_client(url: str, key: str = API_KEY, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=url + "/v1", max_retries=0, timeout=60,
                         _strict_response_validation=True, **kwargs)


def check_response(raw: Any) -> Response:
    """A response object as the SDK's model accepts it (all required fields, right types)."""
    return Response.model_validate(raw if isinstance(raw, dict) else raw.model_dump(mode="json"))


def check_event(event: Any) -> Any:
    return STREAM_EVENT.validate_python(event.model_dump(mode="json") if hasattr(event, "model_dump") else event)
