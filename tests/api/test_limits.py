"""One key cannot make the server hold without bound: queued turns, a call waiting for approval, a webhook
receiver that drips its answer, an extension's timeout, tool output, provider instances, metric label values."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from goose_api import create_app
from goose_api.agent.tool_output import NOTE
from goose_api.conversation import DECLINED_TEXT
from goose_api.ops.metrics import LABEL_VALUES_KEPT
from goose_api.providers.selection import INSTANCES_KEPT, FileChoice, ProviderConfig
from tests.api.test_errors import assert_error
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.gates import Gate
from tests.support.goose_format import failed_deliveries, goose_file
from tests.support.mcp_fixtures import wait_until
from tests.support.sse_reader import parse_text


@pytest.fixture
def make_client(fake_openai, dirs):
    apps = []

    def build(**overrides) -> ApiClient:
        app = create_app(settings_for(fake_openai, dirs, **overrides))
        apps.append(app)
        return ApiClient(app.test_client())
    yield build
    for app in apps:
        app.extensions["goose_api"].close()


def shell(command: str, call_id: str) -> ToolCall:
    return ToolCall("developer__shell", {"command": command}, id=call_id)


def test_a_full_queue_is_429_and_an_interrupt_then_stops_nothing(make_client, fake_openai):
    client = make_client(mode="approve", max_queued_turns=2)
    fake_openai.add(Reply("", tool_calls=[shell("echo hold", "c1")]))
    assert client.post("/session/start", {"prompt": "hold", "session_id": "q"})[1]["status"] == "waiting_approval"
    for prompt in ("one", "two"):
        status, body, _ = client.post("/session/reply", {"prompt": prompt, "session_id": "q", "if_busy": "enqueue"})
        assert status == 202, body
    for if_busy in ("enqueue", "interrupt"):
        status, body, response = client.post("/session/reply", {"prompt": "three", "session_id": "q",
                                                                "if_busy": if_busy})
        assert_error(status, body, 429, "queue_full")
        assert response.headers["Retry-After"] and body["limit"] == 2
    shown = client.get("/session/q")[1]
    assert shown["state"] == "waiting_approval" and len(shown["queued_runs"]) == 2


def test_a_call_left_waiting_for_approval_is_denied_after_approval_timeout(make_client, fake_openai):
    client = make_client(mode="approve", approval_timeout=0.2)
    fake_openai.add(Reply("", tool_calls=[shell("echo never", "c1")]), Reply("the user did not answer"))
    status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "w", "async": True})
    assert status == 202, body
    wait_until(lambda: client.get("/session/w")[1]["state"] == "idle", 30, "the run to end without a decision")
    shown = client.get("/session/w")[1]
    answers = [item for m in shown["messages"] for item in m["content"] if item["type"] == "toolResponse"]
    assert answers[0]["toolResult"]["value"][0]["text"] == DECLINED_TEXT
    assert shown["messages"][-1]["content"][0]["text"] == "the user did not answer"
    events = parse_text(client.get("/session/w/events")[2].get_data(as_text=True)).events
    assert any("approval_timeout" in str(e.data) for e in events if e.type == "notification")
    assert_error(*client.post("/session/w/confirm", {"id": "c1", "action": "allow_once"})[:2], 409, "no_active_run")


class DrippingReceiver:
    """A webhook receiver that answers one header byte at a time, for ever (each read arrives in time)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.cut = Gate()  # reached when the client hung up on us
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.stop.wait(0.05):
                    conn.sendall(b"x")
            except OSError:
                self.cut.reached.set()

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture
def dripping() -> Iterator[DrippingReceiver]:
    receiver = DrippingReceiver()
    yield receiver
    receiver.close()


def test_a_webhook_receiver_that_drips_its_answer_is_cut_at_webhook_timeout(make_client, fake_openai, dirs,
                                                                          dripping):
    client = make_client(webhook_timeout=0.5, webhook_retries=0, webhook_secret="s")
    fake_openai.add(Reply("hooked"))
    assert client.post("/session/start", {"prompt": "x", "webhook": dripping.url})[0] == 200
    wait_until(lambda: failed_deliveries(dirs), 30, "the delivery to be given up")
    dripping.cut.wait_reached()
    assert failed_deliveries(dirs)[0]["last_error"] == "TimeoutError"


def test_an_extension_timeout_over_the_ceiling_is_refused_and_a_configured_one_is_cut(make_client):
    client = make_client(max_extension_timeout=60.0, extensions={
        "slowpoke": {"enabled": True, "type": "builtin", "name": "memory", "timeout": 10**9}})
    status, body, _ = client.post("/extensions/add", {"type": "builtin", "name": "memory", "timeout": 10**9})
    assert (status, body["code"]) == (400, "bad_request") and "max_extension_timeout" in body["message"]
    details = {ext["name"]: ext for ext in client.get("/extensions")[1]["extensions"]}
    assert details["memory"]["timeout"] == 60.0


def test_tool_output_is_kept_to_max_tool_output_chars_with_a_note(make_client, fake_openai, dirs):
    client = make_client(max_tool_output_chars=1000)
    fake_openai.add(Reply("", tool_calls=[shell("python3 -c \"print('x' * 300000, end='')\"", "c1")]), Reply("long"))
    status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "big"})
    assert status == 200, body
    result = [item for m in body["messages"] for item in m["content"] if item["type"] == "toolResponse"][0]
    texts = [part["text"] for part in result["toolResult"]["value"]]
    total = int(texts[-1].split()[4])  # the developer shell keeps 40,000 bytes of a stream itself
    assert total > 1000 and texts[-1] == NOTE.format(total=total, kept=1000)
    assert sum(len(t) for t in texts[:-1]) == 1000 and "x" * 500 in "".join(texts[:-1])
    assert goose_file(dirs, "big").stat().st_size < 20_000
    sent = fake_openai.requests[-1].body["messages"][-1]["content"]
    assert len(str(sent)) < 20_000, "the provider is sent the kept output, not the whole"


def test_provider_instances_are_kept_for_the_last_few_choices_only(fake_openai, dirs):
    config = ProviderConfig(settings_for(fake_openai, dirs), FileChoice(dirs["data"] / "provider.json"))
    first = config.provider()
    for n in range(3 * INSTANCES_KEPT):
        config.switch("openai", f"model-{n}")
        assert config.provider().model == f"model-{n}"
    assert config.instances() == INSTANCES_KEPT
    config.switch("openai", f"model-{3 * INSTANCES_KEPT - 1}")
    assert config.provider() is config.provider(), "the current choice's instance is kept"
    assert first is not config.provider()


def test_metric_labels_the_model_chooses_are_bounded(make_client, fake_openai):
    client = make_client()
    calls = [ToolCall(f"made_up_{n}__tool", {}, id=f"c{n}") for n in range(LABEL_VALUES_KEPT + 20)]
    fake_openai.add(Reply("", tool_calls=calls), Reply("done"))
    assert client.post("/session/start", {"prompt": "x"})[0] == 200
    text = client.get("/metrics")[2].get_data(as_text=True)
    extensions = {sample.labels["extension"] for family in text_string_to_metric_families(text)
                  if family.name == "goose_api_tool_calls" for sample in family.samples}
    assert len(extensions) == LABEL_VALUES_KEPT + 1 and "other" in extensions
