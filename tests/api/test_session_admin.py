"""Session management: list, show, delete, end, summarize, and every bad input they can get."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests.api.test_errors import assert_error
from tests.api.test_runs import wait_for_state
from tests.fakes.core import Fail, Reply
from tests.support.gates import Gate
from tests.support.goose_format import (
    assert_goose_session,
    goose_file,
    has_run_state,
    session_backups,
    stored_session_ids,
)


@pytest.fixture
def app(app_without_tools):
    """No test here makes a tool call (see ``app_without_tools``)."""
    return app_without_tools


def start(client, fake_openai, session_id, text="ok", **extra):
    fake_openai.add(Reply(text, **extra))
    status, body, _ = client.post("/session/start", {"prompt": f"hello {session_id}", "session_id": session_id})
    assert status == 200, body
    return body


@pytest.mark.files_only  # the goose files' own times and paths
def test_list_is_newest_first_paginated_and_shaped_like_goose(client, fake_openai, dirs):
    for n, name in enumerate(["old", "mid", "new"]):
        start(client, fake_openai, name)
        stamp = time.time() - 100 + n * 10
        os.utime(dirs["sessions"] / f"{name}.jsonl", (stamp, stamp))
    (dirs["sessions"] / "new.jsonl.20250101_000000.bak").write_text("not a session\n")
    status, body, _ = client.get("/sessions")
    assert status == 200, body
    assert [s["id"] for s in body["sessions"]] == ["new", "mid", "old"]
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    entry = body["sessions"][0]
    assert list(entry) == ["id", "path", "modified", "metadata"]
    assert entry["path"] == str(dirs["sessions"] / "new.jsonl")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", entry["modified"])
    assert entry["metadata"] == assert_goose_session(goose_file(dirs, "new"))[0]
    status, page, _ = client.get("/sessions?limit=1&offset=1")
    assert [s["id"] for s in page["sessions"]] == ["mid"] and page["total"] == 3


def test_show_a_session_with_its_state_and_messages_since(client, fake_openai, dirs):
    start(client, fake_openai, "shown", "first answer")
    fake_openai.add(Reply("second answer"))
    client.post("/session/reply", {"prompt": "more", "session_id": "shown"})
    status, body, _ = client.get("/session/shown")
    assert status == 200, body
    assert list(body) == ["session_id", "description", "working_dir", "created", "updated", "message_count", "usage",
                          "state", "run_id", "pending_approvals", "last_error", "messages", "queued_runs"]
    assert (body["session_id"], body["description"], body["working_dir"]) == ("shown", "hello shown",
                                                                               str(dirs["work"]))
    assert body["message_count"] == 4 and len(body["messages"]) == 4
    assert body["usage"] == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}
    assert (body["state"], body["pending_approvals"], body["last_error"]) == ("idle", [], None)
    assert body["run_id"].startswith("run_") and body["created"] <= body["updated"]
    status, since, _ = client.get("/session/shown?since=2")
    assert [m["content"][0]["text"] for m in since["messages"]] == ["more", "second answer"]
    assert since["message_count"] == 4


def test_a_failed_run_shows_its_error(client, fake_openai):
    fake_openai.add(Fail(400, "bad things"))
    status, body, _ = client.post("/session/start", {"prompt": "x", "session_id": "broken"})
    assert status == 502 and body["run_id"].startswith("run_") and body["session_id"] == "broken"
    shown = client.get("/session/broken")[1]
    assert shown["state"] == "failed"
    assert shown["last_error"]["error"] == "provider_error" and shown["last_error"]["kind"] == "bad_request"


def test_the_list_pages_newest_first_on_every_backend(client, fake_openai, dirs):
    for name in ("old", "mid", "new"):
        start(client, fake_openai, name)
    status, body, _ = client.get("/sessions?limit=2")
    assert status == 200 and [s["id"] for s in body["sessions"]] == ["new", "mid"] and body["total"] == 3
    assert body["sessions"][0]["metadata"] == assert_goose_session(goose_file(dirs, "new"))[0]
    assert [s["id"] for s in client.get("/sessions?limit=2&offset=2")[1]["sessions"]] == ["old"]
    fake_openai.add(Reply("later"))
    assert client.post("/session/reply", {"prompt": "more", "session_id": "old"})[0] == 200
    assert [s["id"] for s in client.get("/sessions")[1]["sessions"]] == ["old", "new", "mid"], "by last change"


@pytest.mark.files_only  # a goose CLI file dropped into the sessions dir
def test_a_session_never_run_here_is_idle(client, dirs):
    from tests.live.test_server import DATA
    (dirs["sessions"] / "cli.jsonl").write_text((DATA / "goose_cli_session.jsonl").read_text())
    body = client.get("/session/cli")[1]
    assert (body["state"], body["run_id"], body["message_count"]) == ("idle", None, 4)
    status, answer, _ = client.get("/session/cli/events")
    assert_error(status, answer, 404, "not_found")


def test_delete(client, fake_openai, dirs):
    start(client, fake_openai, "gone")
    assert has_run_state(dirs, "gone")
    status, body, _ = client.call("DELETE", "/session/gone")
    assert (status, body["status"]) == (200, "success"), body
    assert "gone" not in stored_session_ids(dirs) and not has_run_state(dirs, "gone")
    assert_error(*client.call("DELETE", "/session/gone")[:2], 404, "not_found")
    assert_error(*client.get("/session/gone")[:2], 404, "not_found")


def test_delete_while_running_is_409(client, fake_openai, dirs):
    gate = Gate()
    fake_openai.add(Reply("slow", gate=gate))
    _, started, _ = client.post("/session/start", {"prompt": "x", "session_id": "busy", "async": True})
    status, body, response = client.call("DELETE", "/session/busy")
    assert_error(status, body, 409, "session_busy")
    assert body["active_run_id"] == started["run_id"] and response.headers["Retry-After"]
    gate.open()
    wait_for_state(client, "busy", "idle")
    assert client.call("DELETE", "/session/busy")[0] == 200


def test_end_stops_the_run_and_keeps_the_history(client, fake_openai, dirs):
    gate = Gate()
    fake_openai.add(Reply("never seen", gate=gate))
    client.post("/session/start", {"prompt": "long job", "session_id": "ending", "async": True})
    gate.wait_reached()
    status, body, _ = client.post("/session/end", {"session_id": "ending"})
    gate.open()
    assert status == 200, body
    assert body["status"] == "success" and body["cancelled"].startswith("the ")
    shown = client.get("/session/ending")[1]
    assert shown["state"] == "idle" and shown["messages"][0]["content"][0]["text"] == "long job"
    status, body, _ = client.post("/session/end", {"session_id": "ending"})
    assert (status, body["cancelled"]) == (200, None), "ending an idle session is fine"
    assert_goose_session(goose_file(dirs, "ending"))


def test_summarize_replaces_the_history_and_keeps_a_backup(client, fake_openai, dirs):
    start(client, fake_openai, "long", "Paris is the capital of France.")
    before = goose_file(dirs, "long").read_text()
    fake_openai.add(Reply("The user asked about France; the answer was Paris."))
    status, body, _ = client.post("/session/summarize", {"session_id": "long"})
    assert status == 200, body
    assert body == {"status": "success", "message": "The user asked about France; the answer was Paris."}
    sent = fake_openai.requests[-1].body
    assert "tools" not in sent and "Paris is the capital of France." in sent["messages"][-1]["content"]
    meta, messages = assert_goose_session(goose_file(dirs, "long"))
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "The user asked about France" in messages[0]["content"][0]["text"]
    assert meta["accumulated_total_tokens"] == 30
    assert session_backups(dirs, "long") == [before]
    assert [s["id"] for s in client.get("/sessions")[1]["sessions"]] == ["long"], "a backup is not a session"
    fake_openai.add(Reply("Still Paris."))
    status, body, _ = client.post("/session/reply", {"prompt": "and?", "session_id": "long"})
    assert status == 200 and len(assert_goose_session(goose_file(dirs, "long"))[1]) == 4


def test_summarize_a_failing_provider_changes_nothing(client, fake_openai, dirs):
    start(client, fake_openai, "kept")
    before = goose_file(dirs, "kept").read_text()
    fake_openai.add(Fail(400, "nope"))
    status, body, _ = client.post("/session/summarize", {"session_id": "kept"})
    assert_error(status, body, 502, "provider_error")
    assert goose_file(dirs, "kept").read_text() == before
    assert session_backups(dirs, "kept") == []


# --- bad inputs ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/session/end", "/session/summarize"])
@pytest.mark.parametrize("body,code", [
    ({}, "validation_error"), ({"session_id": 5}, "validation_error"), ({"session_id": None}, "validation_error"),
    ({"session_id": "a/b"}, "validation_error"), ({"session_id": "x", "more": 1}, "validation_error"),
    ({"session_id": ""}, "validation_error"), ([], "validation_error")])
def test_bad_bodies_are_400(client, path, body, code):
    status, answer, _ = client.post(path, body)
    assert_error(status, answer, 400, code)


@pytest.mark.parametrize("path", ["/session/end", "/session/summarize"])
def test_bad_json_and_content_type(client, path):
    status, answer, _ = client.call("POST", path, data='{"session_id": ', content_type="application/json")
    assert_error(status, answer, 400, "invalid_json")
    status, answer, _ = client.call("POST", path, data='{"session_id": "x"}', content_type="text/plain")
    assert_error(status, answer, 415, "unsupported_media_type")


@pytest.mark.parametrize("method,path", [
    ("GET", "/session/missing"), ("DELETE", "/session/missing"), ("POST", "/session/end"),
    ("POST", "/session/summarize"), ("GET", "/session/missing/events"), ("POST", "/session/missing/cancel"),
    ("POST", "/session/missing/confirm")])
def test_unknown_session_is_404(client, method, path):
    body = {"session_id": "missing"} if path in ("/session/end", "/session/summarize") else None
    if path.endswith("/confirm"):
        body = {"id": "x", "action": "deny"}
    status, answer, _ = client.call(method, path, json=body)
    assert_error(status, answer, 404, "not_found")


@pytest.mark.parametrize("method,path", [
    ("GET", "/session/a.b"), ("DELETE", "/session/a%20b"), ("GET", f"/session/{'x' * 129}"),
    ("GET", "/session/a.b/events"), ("POST", "/session/a.b/cancel")])
def test_bad_session_ids_in_paths_are_400(client, method, path):
    status, answer, _ = client.call(method, path)
    assert_error(status, answer, 400, "bad_request")


@pytest.mark.parametrize("query", ["since=-1", "since=x", "since="])
def test_bad_show_queries(client, fake_openai, query):
    start(client, fake_openai, "q")
    assert_error(*client.get(f"/session/q?{query}")[:2], 400, "validation_error")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=abc"])
def test_bad_list_queries(client, query):
    assert_error(*client.get(f"/sessions?{query}")[:2], 400, "validation_error")


def test_bad_event_cursors(client, fake_openai):
    start(client, fake_openai, "cur")
    assert_error(*client.get("/session/cur/events?after=-3")[:2], 400, "validation_error")
    status, answer, _ = client.get("/session/cur/events", headers={"Last-Event-ID": "abc"})
    assert_error(status, answer, 400, "bad_request")
    assert_error(*client.get("/session/cur/events?run_id=run_0123456789abcdef")[:2], 404, "not_found")
    assert_error(*client.get("/session/cur/events?run_id=run_nope")[:2], 400, "validation_error")


@pytest.mark.parametrize("body,field", [
    ({"prompt": "x", "async": "yes"}, "async"), ({"prompt": "x", "stream": 1}, "stream"),
    ({"prompt": "x", "async": True, "stream": True}, "stream"), ({"prompt": "x", "session_id": "start"}, "session_id")])
def test_bad_turn_options(client, body, field):
    status, answer, _ = client.post("/session/start", body)
    assert_error(status, answer, 400, "validation_error")
    assert field in answer["errors"], answer


def test_cancel_and_confirm_on_an_idle_session_are_409(client, fake_openai):
    start(client, fake_openai, "calm")
    assert_error(*client.post("/session/calm/cancel")[:2], 409, "no_active_run")
    assert_error(*client.post("/session/calm/confirm", {"id": "x", "action": "deny"})[:2], 409, "no_active_run")


def test_openapi_documents_the_new_endpoints(client):
    spec = client.get("/openapi.json")[1]
    for path in ("/sessions", "/session/{session_id}", "/session/{session_id}/events", "/session/{session_id}/cancel",
                 "/session/{session_id}/confirm", "/session/end", "/session/summarize"):
        assert path in spec["paths"], sorted(spec["paths"])
    answers = spec["paths"]["/session/start"]["post"]["responses"]
    assert "202" in answers and set(answers["200"]["content"]) == {"application/json", "text/event-stream"}
    assert answers["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Turn"}
    assert json.dumps(spec).count("text/event-stream") >= 2
