"""What a turn on the embedded model answers when its output limit cuts it (marker ``local_model``)."""

from __future__ import annotations

import json
import sys

import pytest

from goose_api import create_app
from goose_api.settings import Settings
from tests.support.app import API_KEY, ROOT, ApiClient

pytestmark = pytest.mark.local_model


@pytest.fixture
def local_client(dirs):
    def build(**values) -> ApiClient:
        values = {"extensions": {"developer": {"enabled": False}}, **values}
        settings = Settings(provider="local", data_dir=str(dirs["data"]), sessions_dir=str(dirs["sessions"]),
                            working_dir=str(dirs["work"]), api_key=API_KEY, env={}, **values)
        app = create_app(settings)
        apps.append(app)
        return ApiClient(app.test_client())
    apps: list = []
    yield build
    for app in apps:
        app.extensions["goose_api"].close()


def test_an_answer_cut_by_max_tokens_is_kept_with_a_warning_naming_the_limit(local_client):
    client = local_client(max_tokens=24)
    status, body, _ = client.post("/session/start", {"prompt": "Tell me about the sea"})
    assert status == 200, body
    assert body["status"] == "warning" and body["response"].strip()
    [warning] = body["warnings"]
    assert "output limit of 24 tokens" in warning and "GOOSE_API_MAX_TOKENS" in warning
    assert body["usage"]["output_tokens"] == 24


def test_a_tool_call_cut_by_max_tokens_is_never_run_and_the_turn_warns(local_client):
    weather = {"type": "stdio", "cmd": sys.executable, "args": [str(ROOT / "tests" / "fakes" / "weather_server.py")],
               "enabled": True, "timeout": 60}
    client = local_client(max_tokens=20, extensions={"developer": {"enabled": False}, "weather": weather})
    status, body, _ = client.post("/session/start", {"prompt": "What is the weather in Paris?"})
    assert status == 200, body
    cut, answered, final = body["messages"][1:]
    [call] = cut["content"]
    assert call["type"] == "toolRequest" and call["toolCall"]["status"] == "error"
    [response] = answered["content"]
    assert response["id"] == call["id"] and response["toolResult"]["status"] == "error"
    assert "Sunny" not in json.dumps(body["messages"])  # the weather server never ran
    assert final["role"] == "assistant" and final["content"][0]["type"] == "text"
    assert body["status"] == "warning" and "output limit of 20 tokens" in body["warnings"][0]
