"""What the provider changes look like through the HTTP API: the turn's answer, the session file, the tools run.

- a tool whose MCP name the APIs refuse is offered under a name they accept,
  runs when the model calls it, and keeps goose's name in the session file;
- an answer cut at the output limit is a ``"status": "warning"`` answer with a
  warning saying how to raise the limit, and a tool call it cut is not run;
- an answer the service filtered is an error, and no empty answer is saved;
- a tool's image reaches a text-only model as a note; the session keeps the image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goose_api import create_app
from goose_api.providers.tool_names import ToolNames
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ROOT, ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file
from tests.support.mcp_fixtures import python_server

ODD = str(ROOT / "tests" / "fakes" / "odd_tools_server.py")
LONG = "odd__generate_the_quarterly_inventory_report_for_every_region_and_email_it"


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


def add_odd_tools(client: ApiClient, log: Path) -> None:
    status, body, _ = client.post("/extensions/add", python_server("odd", ODD, envs={"ODD_TOOLS_LOG": str(log)}))
    assert status == 200, body


def session_file(dirs, session_id: str) -> list[dict]:
    return assert_goose_session(goose_file(dirs, session_id))[1]


def test_tools_with_names_the_apis_refuse_are_offered_called_and_saved_by_goose_name(make_client, fake_openai,
                                                                                      dirs, tmp_path):
    client = make_client()
    log = tmp_path / "ran.log"
    add_odd_tools(client, log)
    names = ToolNames(["odd__search.issues", "odd__fs/read", LONG])
    fake_openai.add(Reply(tool_calls=[ToolCall(names.wire("odd__search.issues"), {"query": "crash"}, id="call_1"),
                                      ToolCall(names.wire(LONG), {}, id="call_2")]),
                    Reply("Two issues; report sent."))
    status, body, _ = client.post("/session/start", {"prompt": "go", "session_id": "odd"})
    assert status == 200 and body["status"] == "success", body
    assert log.read_text().split() == ["search.issues", LONG.removeprefix("odd__")]
    offered = [t["function"]["name"] for t in fake_openai.requests[0].body["tools"]]
    assert names.wire("odd__fs/read") in offered and all(len(n) <= 64 and "." not in n for n in offered)
    saved = [item["toolCall"]["value"]["name"] for m in session_file(dirs, "odd") for item in m["content"]
             if item["type"] == "toolRequest"]
    assert saved == ["odd__search.issues", LONG]  # goose's names, as goose itself would write them


def test_an_answer_cut_at_the_limit_is_a_warning_and_its_cut_call_never_runs(make_client, fake_openai, dirs):
    client = make_client(max_tokens=64)
    fake_openai.add(Reply("Let me write it.", finish="length", tool_calls=[
                        ToolCall("developer__shell", {"command": "touch cut-call-ran"}, id="call_cut")]),
                    Reply("I was cut off; here is a shorter plan.", finish="length"))
    status, body, _ = client.post("/session/start", {"prompt": "write a long file", "session_id": "cut"})
    assert status == 200, body
    assert body["status"] == "warning" and body["response"] == "I was cut off; here is a shorter plan."
    assert any("64 tokens" in w and "GOOSE_API_MAX_TOKENS" in w for w in body["warnings"])
    assert not (dirs["work"] / "cut-call-ran").exists()
    messages = session_file(dirs, "cut")
    request, response = messages[1]["content"][1], messages[2]["content"][0]
    assert request["toolCall"]["status"] == "error" and response["toolResult"]["status"] == "error"
    assert "cut off at the output limit" in response["toolResult"]["error"]


def test_a_filtered_answer_is_an_error_and_no_empty_answer_is_saved(make_client, fake_openai, dirs):
    client = make_client()
    fake_openai.add(Reply("", finish="content_filter"))
    status, body, _ = client.post("/session/start", {"prompt": "something filtered", "session_id": "filtered"})
    assert status == 502 and body["error"] == "provider_error" and body["kind"] == "content_filtered", body
    assert "rephrase" in body["message"]
    assert [m["role"] for m in session_file(dirs, "filtered")] == ["user"]


def test_a_tool_image_reaches_a_text_only_model_as_a_note_and_stays_in_the_session(make_client, fake_openai,
                                                                                     dirs, tmp_path):
    client = make_client(model="o3-mini")
    add_odd_tools(client, tmp_path / "ran.log")
    fake_openai.add(Reply(tool_calls=[ToolCall("odd__screenshot", {}, id="call_shot")]), Reply("A tiny image."))
    status, body, _ = client.post("/session/start", {"prompt": "screenshot", "session_id": "shot"})
    assert status == 200 and body["status"] == "success", body
    sent = json.dumps(fake_openai.requests[1].body)
    assert "image_url" not in sent and "the model o3-mini does not take images" in sent
    result = session_file(dirs, "shot")[2]["content"][0]["toolResult"]["value"]
    assert [item["type"] for item in result] == ["text", "image"]  # the file keeps what the tool answered
