"""What `make run` gives a newcomer: no key, no provider configured, the embedded model answers."""

from __future__ import annotations

import pytest
import requests

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
