"""Two keys on one server, tried as alice would try to reach bob: through her own turns' tool calls.

The model is alice's to steer (a prompt is enough), so each tool call here is what she could make
it run. The developer shell is sandboxed (bubblewrap works on this machine) and its editor kept to
her working dir: bob's session, the data dir and the server's files stay out of reach.
"""

from __future__ import annotations

import pytest

from goose_api import create_app
from tests.fakes.core import Reply, ToolCall
from tests.support.app import ApiClient, settings_for

KEYS = ({"name": "alice", "key": "alice-key"}, {"name": "bob", "key": "bob-key"})
BOBS_SECRET = "bob's secret merger plan"


@pytest.fixture
def team(fake_openai, dirs):
    (dirs["work"] / "alice").mkdir()
    app = create_app(settings_for(fake_openai, dirs, api_keys=KEYS, working_dir=str(dirs["work"] / "alice")))
    yield {name: ApiClient(app.test_client(), f"{name}-key") for name in ("alice", "bob")}
    app.extensions["goose_api"].close()


def tool_text(body: dict) -> str:
    results = [item["toolResult"] for message in body["messages"] for item in message["content"]
               if item["type"] == "toolResponse"]
    return str(results)


def test_alices_tool_calls_cannot_reach_bobs_session_or_the_servers_files(team, fake_openai, dirs):
    fake_openai.add(Reply("noted"))
    assert team["bob"].post("/session/start", {"prompt": BOBS_SECRET, "session_id": "bobs"})[0] == 200
    command = (f"cat {dirs['sessions']}/bobs.jsonl; ls -A {dirs['data']} {dirs['sessions']}; "
               f"cat {dirs['data']}/owners.jsonl; cat /proc/*/environ; echo planted > {dirs['sessions']}/x.jsonl")
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": command}, id="sh"),
                                          ToolCall("developer__text_editor", {
                                              "command": "view", "path": str(dirs["sessions"] / "bobs.jsonl")},
                                              id="ed")]),
                    Reply("I found nothing."))
    status, body, _ = team["alice"].post("/session/start", {"prompt": "find bob's plans", "session_id": "alices"})
    assert status == 200, body
    seen = tool_text(body) + str(fake_openai.requests[-1].body["messages"])
    assert BOBS_SECRET not in seen and "bobs.jsonl\\n" not in seen and "owners.jsonl\\n" not in seen
    assert "bob-key" not in seen and "alice-key" not in seen
    assert "outside the working directory" in seen
    assert not (dirs["sessions"] / "x.jsonl").exists()
    assert team["bob"].get("/session/bobs")[1]["messages"][0]["content"][0]["text"] == BOBS_SECRET


def test_a_working_dir_in_the_servers_own_dirs_is_refused(team, dirs):
    admin = ApiClient(team["alice"].flask, "test-api-key")
    for private in (dirs["data"], dirs["data"] / "runs", dirs["sessions"]):
        private.mkdir(exist_ok=True)
        status, body, _ = admin.post("/session/start", {"prompt": "x", "working_dir": str(private)})
        assert (status, body["error"]) == (400, "bad_request") and "data or sessions dir" in body["message"]


def test_a_key_without_admin_works_inside_the_default_working_dir(team, fake_openai, dirs, tmp_path):
    inside = dirs["work"] / "alice" / "project"
    inside.mkdir()
    for outside in ("/", "/etc", str(dirs["home"]), str(dirs["work"])):
        status, body, _ = team["alice"].post("/session/start", {"prompt": "x", "working_dir": outside})
        assert (status, body["error"]) == (400, "bad_request") and "default working dir" in body["message"], body
        status, body, _ = team["alice"].post("/sessions/import", {
            "format": "json", "data": {"conversation": []}, "working_dir": outside})
        assert status == 400 and "default working dir" in body["message"], body
    imported = team["alice"].post("/sessions/import", {"format": "json", "data": {"working_dir": "/etc",
                                                                                  "conversation": []}})[1]
    assert imported["working_dir"] == str(dirs["work"] / "alice"), "another machine's dir falls back to the default"
    fake_openai.add(Reply("ok"), Reply("admin"))
    status, body, _ = team["alice"].post("/session/start", {"prompt": "x", "working_dir": str(inside)})
    assert status == 200, body
    admin = ApiClient(team["alice"].flask, "test-api-key")
    assert admin.post("/session/start", {"prompt": "x", "working_dir": str(dirs["home"])})[0] == 200
