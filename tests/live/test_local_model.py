"""What `make run` gives a newcomer: no key, no provider configured, the embedded model answers."""

from __future__ import annotations

import sys

import pytest
import requests
import yaml

from tests.support.app import ROOT
from tests.support.goose_format import assert_goose_session
from tests.support.live import start_live_server

pytestmark = pytest.mark.local_model


@pytest.mark.local_model
def test_fresh_server_answers_with_the_embedded_model(dirs, tmp_path):
    env = {"HOME": str(dirs["home"]), "GOOSE_API_DATA_DIR": str(dirs["data"]),
           "GOOSE_API_SESSIONS_DIR": str(dirs["sessions"]), "GOOSE_API_WORKING_DIR": str(dirs["work"])}
    server = start_live_server(env, tmp_path, tmp_path / "local.log")
    try:
        key = (dirs["data"] / "api_key").read_text().strip()
        config = server.get("/provider/config", key=key).json()
        assert (config["provider"], config["configured"]) == ("local", True)
        answer = server.post("/session/start", {"prompt": "What is the capital of France?"}, key=key, timeout=120)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["response"].strip(), body
        assert body["usage"]["output_tokens"] > 0
        assert_goose_session(dirs["sessions"] / f"{body['session_id']}.jsonl")
        replied = requests.post(server.url + "/session/reply", json={"prompt": "And of Italy?"},
                                headers={"x-api-key": key}, timeout=120)
        assert replied.status_code == 200 and replied.json()["response"].strip()
    finally:
        server.stop()


def test_the_embedded_model_calls_a_configured_tool_and_answers_from_its_result(dirs, tmp_path):
    weather = {"type": "stdio", "cmd": sys.executable, "args": [str(ROOT / "tests" / "fakes" / "weather_server.py")],
               "enabled": True, "timeout": 60}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"extensions": {"developer": {"enabled": False}, "weather": weather}}))
    env = {"HOME": str(dirs["home"]), "GOOSE_API_DATA_DIR": str(dirs["data"]), "GOOSE_API_CONFIG": str(config),
           "GOOSE_API_SESSIONS_DIR": str(dirs["sessions"]), "GOOSE_API_WORKING_DIR": str(dirs["work"])}
    server = start_live_server(env, tmp_path, tmp_path / "local.log")
    try:
        key = (dirs["data"] / "api_key").read_text().strip()
        answer = server.post("/session/start", {"prompt": "What is the weather in Paris?"}, key=key, timeout=300)
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    request, response, final = body["messages"][1:]
    [call] = request["content"]
    assert call["toolCall"] == {"status": "success",
                                "value": {"name": "weather__get_weather", "arguments": {"city": "Paris"}}}
    [result] = response["content"]
    assert result["id"] == call["id"] and result["toolResult"]["status"] == "success"
    assert result["toolResult"]["value"][0]["text"] == "Sunny, 21 degrees Celsius in Paris"
    assert final["role"] == "assistant" and "sunny" in body["response"].lower()
    assert body["status"] == "success" and body["response"] == final["content"][0]["text"]
    assert_goose_session(dirs["sessions"] / f"{body['session_id']}.jsonl")
