"""The extension endpoints over Flask's client and gunicorn, and tools really running in a turn."""

from __future__ import annotations

import sys

import pytest

from goose_api import create_app
from goose_api.storage.process import pid_alive
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import assert_goose_session, goose_file
from tests.support.mcp_fixtures import wait_until


def details(client) -> dict[str, dict]:
    status, body, _ = client.get("/extensions")
    assert status == 200, body
    return {e["name"]: e for e in body["extensions"]}


def test_developer_is_enabled_by_default(client):
    status, body, _ = client.get("/extensions/list")
    assert (status, body) == (200, {"extensions": ["developer"]})
    developer = details(client)["developer"]
    assert developer["status"] == "running"
    assert set(developer["tools"]) == {"developer__shell", "developer__text_editor"}


@pytest.mark.slow
def test_seed_example_add_and_remove_mcp_say(client):
    status, body, _ = client.post("/extensions/add", {"type": "builtin", "name": "mcp_say"})
    assert (status, body) == (200, {"error": False, "message": None})
    assert client.get("/extensions/list")[1]["extensions"] == ["developer", "mcp_say"]
    pid = details(client)["mcp_say"]["pid"]
    assert pid and pid_alive(pid)
    status, body, _ = client.call("POST", "/extensions/remove", data='"mcp_say"', content_type="application/json")
    assert (status, body) == (200, {"error": False, "message": None})
    wait_until(lambda: not pid_alive(pid), what="the mcp_say server to stop")
    assert client.get("/extensions/list")[1]["extensions"] == ["developer"]


@pytest.mark.slow
def test_remove_accepts_an_object_and_unknown_is_404(client):
    client.post("/extensions/add", {"type": "builtin", "name": "mcp_say"})
    assert client.post("/extensions/remove", {"name": "mcp_say"})[0] == 200
    status, body, _ = client.post("/extensions/remove", {"name": "mcp_say"})
    assert status == 404 and body["error"] is True and body["code"] == "not_found" and body["message"]


@pytest.mark.parametrize("config,field", [
    ({"name": "x"}, "type"),
    ({"type": "carrier_pigeon", "name": "x"}, "type"),
    ({"type": "stdio", "name": "x"}, "cmd"),
    ({"type": "stdio", "name": "", "cmd": "true"}, "name"),
    ({"type": "sse", "name": "x", "uri": "ftp://host"}, "uri"),
    ({"type": "builtin", "name": "x", "timeout": -1}, "timeout"),
    ({"type": "builtin", "name": "x", "surprise": 1}, "surprise"),
    ({"type": "stdio", "name": "x", "cmd": "true", "args": "not-a-list"}, "args"),
])
def test_bad_extension_configs_are_400_in_the_seed_shape(client, config, field):
    status, body, _ = client.post("/extensions/add", config)
    assert status == 400, body
    assert body["error"] is True and body["code"] == "validation_error" and field in body["message"]


@pytest.mark.parametrize("payload", ['[]', '5', 'null', '{"name": 3}', '""'])
def test_bad_remove_bodies_are_400(client, payload):
    status, body, _ = client.call("POST", "/extensions/remove", data=payload, content_type="application/json")
    assert status == 400 and body["error"] is True, body


@pytest.mark.parametrize("path", ["/extensions/add", "/extensions/remove"])
def test_bad_json_and_content_type(client, path):
    status, body, _ = client.call("POST", path, data="{nope", content_type="application/json")
    assert status == 400 and body["error"] is True and body["code"] == "invalid_json"
    status, body, _ = client.call("POST", path, data='"x"', content_type="text/plain")
    assert status == 415 and body["error"] is True


def test_a_server_that_cannot_start_is_502_and_not_kept(client):
    status, body, _ = client.post("/extensions/add", {"type": "stdio", "name": "broken", "timeout": 20,
                                                      "cmd": sys.executable, "args": ["-c", "import sys; "
                                                      "sys.stderr.write('boom: missing config\\n'); sys.exit(3)"]})
    assert status == 502 and body["error"] is True, body
    assert "boom: missing config" in body["message"]
    assert client.get("/extensions/list")[1]["extensions"] == ["developer"]


def test_missing_env_keys_and_disallowed_commands(fake_openai, dirs):
    app = create_app(settings_for(fake_openai, dirs, extension_commands=("uvx",)))
    client = ApiClient(app.test_client())
    try:
        status, body, _ = client.post("/extensions/add", {"type": "stdio", "name": "t", "cmd": sys.executable})
        assert status == 403 and body["error"] is True and body["code"] == "forbidden"
        status, body, _ = client.post("/extensions/add", {"type": "stdio", "name": "t", "cmd": "uvx",
                                                          "env_keys": ["NOT_SET_ANYWHERE_123"]})
        assert status == 400 and "NOT_SET_ANYWHERE_123" in body["message"]
    finally:
        app.extensions["goose_api"].close()


def test_extension_keys_are_required(client):
    response = client.flask.get("/extensions/list")
    assert response.status_code == 401
    response = client.flask.post("/extensions/add", json={"type": "builtin", "name": "mcp_say"})
    assert response.status_code == 401 and response.get_json()["error"] is True


def test_a_tool_really_runs_and_its_result_reaches_the_provider(client, fake_openai, dirs):
    command = "echo made-by-the-tool > proof.txt && cat proof.txt && pwd"
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": command}, id="call_sh")]),
                    Reply("The file is written."))
    status, body, _ = client.post("/session/start", {"prompt": "write a file"})
    assert status == 200, body
    assert (dirs["work"] / "proof.txt").read_text().strip() == "made-by-the-tool"
    offered = {t["function"]["name"] for t in fake_openai.requests[0].body["tools"]}
    assert {"developer__shell", "developer__text_editor"} <= offered
    tool_message = [m for m in fake_openai.requests[1].body["messages"] if m["role"] == "tool"][0]
    assert tool_message["tool_call_id"] == "call_sh"
    assert "made-by-the-tool" in str(tool_message["content"]) and str(dirs["work"]) in str(tool_message["content"])
    assert "developer" in fake_openai.requests[0].body["messages"][0]["content"]  # the extension's instructions
    _, messages = assert_goose_session(goose_file(dirs, body['session_id']))
    assert messages[2]["content"][0]["toolResult"]["status"] == "success"


def test_a_failing_tool_reaches_the_model_as_an_error(client, fake_openai, dirs):
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__text_editor",
                                                   {"command": "view", "path": "/no/such/file.txt"}, id="c_v")]),
                    Reply("That file does not exist."))
    status, body, _ = client.post("/session/start", {"prompt": "read it"})
    assert status == 200, body
    result = body["messages"][2]["content"][0]["toolResult"]
    assert result["status"] == "error" and "/no/such/file.txt" in result["error"]
    tool_message = [m for m in fake_openai.requests[1].body["messages"] if m["role"] == "tool"][0]
    assert "/no/such/file.txt" in str(tool_message["content"])


def test_third_party_server_added_over_http_is_used_in_a_turn(live_server, fake_openai, dirs):
    added = live_server.post("/extensions/add", {"type": "stdio", "name": "time", "cmd": sys.executable,
                                                 "args": ["-m", "mcp_server_time"], "timeout": 60})
    assert added.status_code == 200, added.text
    assert added.json() == {"error": False, "message": None}
    fake_openai.add(Reply("", tool_calls=[ToolCall("time__get_current_time", {"timezone": "UTC"}, id="t1")]),
                    Reply("It is now."))
    answer = live_server.post("/session/start", {"prompt": "what time is it in UTC?"})
    assert answer.status_code == 200, answer.text
    tool_message = [m for m in fake_openai.requests[1].body["messages"] if m["role"] == "tool"][0]
    assert "UTC" in str(tool_message["content"])
    listed = live_server.get("/extensions/list").json()["extensions"]
    assert listed == ["developer", "time"]
