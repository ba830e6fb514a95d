"""Logs of a live server: one line per request / provider call / tool call, JSON lines, no secrets."""

from __future__ import annotations

import json
import logging
import re

import pytest
import requests

from goose_api.ops.logs import BatchingStreamHandler
from tests.fakes.core import Reply, ToolCall
from tests.fakes.openai import OpenAIFake
from tests.support.live import live_env, start_live_server
from tests.support.mcp_fixtures import wait_until

GUNICORN_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:]+ [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ")
PROVIDER_KEY = "sk-provider-secret-4f9a1c"
ADMIN_KEY = "goose-admin-secret-77e2d0"
ALICE_KEY = "alice-secret-1b3c5d"
ENV_SECRET = "env-secret-value-9c8b7a"
PROMPT = "PROMPT-MARKER list the files"


def run_and_read_log(tmp_path, dirs, level: str) -> tuple[str, list[str]]:
    """Drive a live server (JSON logs at ``level``) through requests, a provider call and a tool call."""
    with OpenAIFake(api_key=PROVIDER_KEY) as fake:
        fake.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo tool-output"}, id="t1")]),
                 Reply("done"))
        env = live_env(fake, dirs, GOOSE_API_KEY=ADMIN_KEY, GOOSE_API_LOG_FORMAT="json",
                       GOOSE_API_LOG_LEVEL=level, SOME_SERVICE_TOKEN=ENV_SECRET,
                       GOOSE_API_API_KEYS=json.dumps([{"name": "alice", "key": ALICE_KEY}]))
        server = start_live_server(env, tmp_path, tmp_path / f"{level}.log")
        try:
            answer = server.post("/session/start", {"prompt": PROMPT}, key=ALICE_KEY,
                                 headers={"X-Request-ID": "req-start-1"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["X-Request-ID"] == "req-start-1"
            assert server.get("/provider/config", key=ALICE_KEY + "x",
                              headers={"X-Request-ID": "req-bad-key"}).status_code == 401
            generated = server.get("/health", headers={"X-Request-ID": "bad id with spaces"})
            assert generated.headers["X-Request-ID"] != "bad id with spaces"
            requests.get(server.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
            fake.assert_done()
        finally:
            assert server.stop() == 0
        return server.log(), [generated.headers["X-Request-ID"]]


def entries(log: str) -> list[dict]:
    """The goose_api JSON lines; any goose_api line that is not JSON fails."""
    out = []
    for line in log.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
        elif not GUNICORN_LINE.match(line):  # gunicorn's own lines name our worker class
            assert "goose_api" not in line, f"not a JSON line: {line}"
    return out


@pytest.mark.live
def test_info_logs_one_line_per_event_and_no_secrets(tmp_path, dirs):
    log, (generated_id,) = run_and_read_log(tmp_path, dirs, "INFO")
    lines = entries(log)
    requests_logged = [e for e in lines if e["logger"] == "goose_api.access"]
    start = [e for e in requests_logged if e["request_id"] == "req-start-1"]
    assert len(start) == 1
    assert {k: start[0][k] for k in ("method", "path", "status", "client")} == {
        "method": "POST", "path": "/session/start", "status": 200, "client": "alice"}
    assert start[0]["duration_ms"] > 0
    bad = [e for e in requests_logged if e["request_id"] == "req-bad-key"]
    assert len(bad) == 1 and bad[0]["status"] == 401 and bad[0]["client"] == "-"
    assert [e["path"] for e in requests_logged if e["request_id"] == generated_id] == ["/health"]
    assert [e for e in requests_logged if e["path"] == "/metrics"][0]["client"] == "default"
    provider_calls = [e for e in lines if e["message"].startswith("provider call ")]
    assert len(provider_calls) == 2 and all("status=200" in e["message"] for e in provider_calls)
    tool_calls = [e for e in lines if e["message"].startswith("tool call ")]
    assert len(tool_calls) == 1 and "developer__shell" in tool_calls[0]["message"]
    for secret in (PROVIDER_KEY, ADMIN_KEY, ALICE_KEY, ENV_SECRET, "PROMPT-MARKER", "tool-output"):
        assert secret not in log, f"{secret!r} was logged at INFO"


@pytest.mark.live
def test_debug_shows_prompts_but_still_no_secrets(tmp_path, dirs):
    log, _ = run_and_read_log(tmp_path, dirs, "DEBUG")
    entries(log)
    assert "PROMPT-MARKER" in log
    for secret in (PROVIDER_KEY, ADMIN_KEY, ALICE_KEY, ENV_SECRET):
        assert secret not in log, f"{secret!r} was logged at DEBUG"



class CountingStream:
    def __init__(self):
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def test_lines_are_written_in_batches_warnings_at_once_and_all_at_shutdown():
    stream = CountingStream()
    handler = BatchingStreamHandler(stream, interval=0.2)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("goose_api.tests.batching")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    for n in range(50):
        logger.info("request %d", n)
    assert stream.writes == [], "INFO lines wait for the flusher"
    wait_until(lambda: stream.writes, 5, "the flusher")
    assert stream.writes == ["".join(f"INFO request {n}\n" for n in range(50))], "one write for the batch"
    logger.info("before the warning")
    logger.warning("at once")
    assert stream.writes[1:] == ["INFO before the warning\nWARNING at once\n"], "a warning writes what waited too"
    logger.info("last words")
    handler.flush()  # what logging.shutdown and gunicorn's worker_exit do
    assert stream.writes[2:] == ["INFO last words\n"]
    handler.limit = 100
    for n in range(5):
        logger.info("%s", "x" * 30)
    assert len(stream.writes) == 4, "past the size limit it writes without waiting"
