"""Under gunicorn: event streams held open never take the threads short requests and new turns need.

A run waiting for approval of a tool call (``GOOSE_API_MODE=approve``) holds
its streams open for as long as a test needs.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import requests

from tests.fakes.core import Reply, ToolCall
from tests.support.app import API_KEY
from tests.support.live import LiveServer, live_env, start_live_server
from tests.support.mcp_fixtures import wait_until

AUTH = {"x-api-key": API_KEY}
STREAMS = 40  # more than the 16 threads a worker had before, each held by one stream


@pytest.fixture
def server_with(fake_openai, dirs, tmp_path):
    servers: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_MODE="approve", **env), tmp_path,
                                   tmp_path / "gunicorn.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def held_run(server: LiveServer, fake, session_id: str) -> None:
    fake.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo held"}, id="held")]))
    response = server.post("/session/start", {"prompt": "hold", "session_id": session_id, "async": True})
    assert response.status_code == 202, response.text
    wait_until(lambda: server.get(f"/session/{session_id}").json()["state"] == "waiting_approval", 20,
               "the run to wait for approval")


def open_stream(stack: ExitStack, server: LiveServer, session_id: str) -> requests.Response:
    """An event stream the server is serving (its first frame arrived), kept open until ``stack`` closes."""
    response = stack.enter_context(requests.get(f"{server.url}/session/{session_id}/events", headers=AUTH,
                                                stream=True, timeout=30))
    assert response.status_code == 200, response.text
    assert response.raw.read(5) == b"retry", "the stream's first frame"
    return response


def test_with_many_streams_open_short_requests_and_new_turns_are_answered(server_with, fake_openai):
    server = server_with()  # the defaults
    held_run(server, fake_openai, "held")
    with ExitStack() as stack:
        for _ in range(STREAMS):
            open_stream(stack, server, "held")
        assert server.get("/health", key=None).status_code == 200
        assert server.get("/ready").status_code in (200, 503)  # answered, whatever it finds
        assert server.get("/session/held").json()["state"] == "waiting_approval"
        calls = len(fake_openai.requests)
        fake_openai.add(Reply("a new turn", delay=0.5))
        response = server.post("/session/start", {"prompt": "new", "session_id": "fresh", "async": True})
        assert response.status_code == 202, response.text
        wait_until(lambda: len(fake_openai.requests) > calls, 20, "the new turn to reach the provider")
        fake_openai.add(Reply("a blocking turn"))
        response = server.post("/session/start", {"prompt": "wait for it", "session_id": "blocking"})
        assert (response.status_code, response.json()["response"]) == (200, "a blocking turn")
        fake_openai.add(Reply("approved"))
        response = server.post("/session/held/confirm", {"id": "held", "action": "allow_once"})
        assert response.json()["response"] == "approved"
    wait_until(lambda: server.get("/session/fresh").json()["state"] == "idle", 20, "the new turn to end")


def test_over_the_limit_a_stream_is_429_and_a_closed_one_frees_its_slot(server_with, fake_openai):
    server = server_with(GOOSE_API_THREADS="6", GOOSE_API_LONG_REQUEST_LIMIT="2", GOOSE_API_SSE_HEARTBEAT="0.2")
    held_run(server, fake_openai, "held")
    with ExitStack() as stack:
        first = open_stream(stack, server, "held")
        open_stream(stack, server, "held")
        refused = server.get("/session/held/events")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        assert refused.json()["error"] == "too_many_requests"
        assert server.get("/health", key=None).status_code == 200, "the threads above the limit answer"
        first.close()  # the client goes away; the server notices at its next heartbeat

        def reopened() -> bool:
            response = requests.get(f"{server.url}/session/held/events", headers=AUTH, stream=True, timeout=30)
            if response.status_code == 429:
                response.close()
                return False
            stack.enter_context(response)
            return response.status_code == 200
        wait_until(reopened, 20, "the closed stream's slot to be free again")
        fake_openai.add(Reply("approved"))
        assert server.post("/session/held/confirm", {"id": "held", "action": "allow_once",
                                                     "async": True}).status_code == 202
        wait_until(lambda: server.get("/session/held").json()["state"] == "idle", 20, "the run to end")
