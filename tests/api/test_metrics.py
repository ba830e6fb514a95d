"""GET /metrics: Prometheus text and the goose-api JSON, in one process and across gunicorn workers."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from goose_api import create_app
from tests.fakes.core import Fail, Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.live import live_env, start_live_server
from tests.support.mcp_fixtures import wait_until


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a Prometheus text answer."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> str:
    status, _, response = client.get("/metrics")
    assert status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.get_data(as_text=True)


def test_requests_are_counted_by_route_and_status(client):
    for _ in range(3):
        client.get("/health")
    client.get("/provider/config")
    client.get("/session/nope/wrong")
    client.post("/session/start", {"prompt": ""})
    text = scrape(client)
    assert value(text, "goose_api_http_requests_total", method="GET", route="/health", status="200") == 3
    assert value(text, "goose_api_http_requests_total", method="GET", route="/provider/config", status="200") == 1
    assert value(text, "goose_api_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(text, "goose_api_http_requests_total", method="POST", route="/session/start", status="400") == 1
    assert value(text, "goose_api_http_request_duration_seconds_count", method="GET", route="/health") == 3


@pytest.mark.slow
def test_provider_calls_errors_retries_and_tokens(client, fake_openai):
    fake_openai.add(Fail(503, retry_after=0), Reply("ok", usage=(12, 3)), Fail(401, code="auth"))
    assert client.post("/session/start", {"prompt": "hi"})[0] == 200
    assert client.post("/session/reply", {"prompt": "again"})[0] == 502
    text = scrape(client)
    model = {"provider": "openai", "model": fake_openai.default_model}
    assert value(text, "goose_api_provider_calls_total", **model) == 3
    assert value(text, "goose_api_provider_retries_total", **model) == 1
    assert value(text, "goose_api_provider_errors_total", kind="server_unavailable", **model) == 1
    assert value(text, "goose_api_provider_errors_total", kind="authentication", **model) == 1
    assert value(text, "goose_api_provider_tokens_total", direction="input", **model) == 12
    assert value(text, "goose_api_provider_tokens_total", direction="output", **model) == 3
    assert value(text, "goose_api_provider_call_duration_seconds_count", **model) == 1


@pytest.mark.slow
def test_tool_calls_errors_and_latency_by_extension(client, fake_openai):
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "echo hi"}, id="a"),
                                          ToolCall("nosuch__tool", {}, id="b")]),
                    Reply("done"))
    assert client.post("/session/start", {"prompt": "use tools"})[0] == 200
    text = scrape(client)
    assert value(text, "goose_api_tool_calls_total", extension="developer") == 1
    assert value(text, "goose_api_tool_errors_total", extension="developer") == 0
    assert value(text, "goose_api_tool_calls_total", extension="nosuch") == 1
    assert value(text, "goose_api_tool_errors_total", extension="nosuch") == 1
    assert value(text, "goose_api_tool_call_duration_seconds_count", extension="developer") == 1
    assert value(text, "goose_api_tool_calls_in_progress", extension="developer") == 0
    assert value(text, "goose_api_active_runs") == 0


@pytest.mark.slow
def test_sessions_on_disk_and_the_goose_api_json(client, fake_openai, dirs):
    fake_openai.add(Reply("one"), Reply("two"), Reply("three"))
    client.post("/session/start", {"prompt": "a", "session_id": "first"})
    client.post("/session/start", {"prompt": "b", "session_id": "second"})
    client.post("/session/reply", {"prompt": "c", "session_id": "second"})
    assert value(scrape(client), "goose_api_sessions") == 2
    status, body, response = client.get("/metrics", headers={"Accept": "application/json"})
    assert status == 200 and response.headers["Content-Type"] == "application/json"
    assert body == {"session_messages": {"first": 2, "second": 4}, "active_sessions": 2, "pending_requests": {}}


@pytest.mark.slow
def test_the_json_shows_a_key_only_its_own_sessions(fake_openai, dirs):
    keys = [{"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"}]
    app = create_app(settings_for(fake_openai, dirs, api_keys=tuple(keys)))
    try:
        alice, bob = ApiClient(app.test_client(), "alice-key"), ApiClient(app.test_client(), "bob-key")
        fake_openai.add(Reply("x"))
        alice.post("/session/start", {"prompt": "mine", "session_id": "alices"})
        summary = bob.get("/metrics", headers={"Accept": "application/json"})[1]
        assert summary == {"session_messages": {}, "active_sessions": 0, "pending_requests": {}}
        assert alice.get("/metrics", headers={"Accept": "application/json"})[1]["session_messages"] == {"alices": 2}
    finally:
        app.extensions["goose_api"].close()


def test_metrics_need_a_key(client):
    assert ApiClient(client.flask, key=None).get("/metrics")[0] == 401


@pytest.mark.live
def test_metrics_add_up_across_two_gunicorn_workers(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs, GOOSE_API_WORKERS="2"), tmp_path, tmp_path / "two.log")
    metrics_dir = dirs["data"] / "prometheus"
    health = {"method": "GET", "route": "/health", "status": "200"}
    try:
        # each worker's live-gauge file appears once its app is built
        wait_until(lambda: len(list(metrics_dir.glob("gauge_livesum_*.db"))) == 2, 30, "both workers' gauges")
        sent = value(server.get("/metrics").text, "goose_api_http_requests_total", **health)  # start-up probes
        with ThreadPoolExecutor(8) as pool:  # concurrent connections until both workers answered some
            while len(list(metrics_dir.glob("counter_*.db"))) < 2 and sent < 400:
                assert all(r.status_code == 200 for r in pool.map(
                    lambda _: server.get("/health", headers={"Connection": "close"}), range(20)))
                sent += 20
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2, "one worker answered every request"
        for _ in range(6):  # whichever worker answers the scrape, it reports both workers' requests
            text = server.get("/metrics").text
            assert value(text, "goose_api_http_requests_total", **health) == sent
        assert len(list(metrics_dir.glob("gauge_livesum_*.db"))) == 2
        server.process.send_signal(signal.SIGTTOU)  # one worker fewer: its live gauges must go
        wait_until(lambda: len(list(metrics_dir.glob("gauge_livesum_*.db"))) == 1, 20, "the stopped worker's gauges")
        text = server.get("/metrics").text
        assert value(text, "goose_api_http_requests_total", **health) == sent
    finally:
        server.stop()
