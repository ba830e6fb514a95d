"""Hardening: working_dir inside allowed_roots, and no answer reveals paths outside the data dir or secrets."""

from __future__ import annotations

import os

import pytest

from goose_api import create_app
from tests.fakes.core import Reply
from tests.support.app import ApiClient, settings_for
from tests.support.goose_format import stored_session_ids


@pytest.fixture
def rooted(fake_openai, dirs, tmp_path):
    allowed = tmp_path / "projects"
    (allowed / "one" / "deep").mkdir(parents=True)
    (tmp_path / "projects-evil").mkdir()
    app = create_app(settings_for(fake_openai, dirs, allowed_roots=(str(allowed),)))
    yield ApiClient(app.test_client()), allowed, tmp_path
    app.extensions["goose_api"].close()


def test_working_dir_inside_allowed_roots_is_accepted(rooted, fake_openai, dirs):
    client, allowed, _ = rooted
    fake_openai.add(Reply("ok"))
    status, body, _ = client.post("/session/start", {"prompt": "x", "working_dir": str(allowed / "one" / "deep")})
    assert status == 200, body


@pytest.mark.parametrize("outside", ["/", "{tmp}/projects-evil", "{tmp}/projects/../projects-evil", "{tmp}/link"])
def test_working_dir_outside_allowed_roots_is_400_and_creates_nothing(rooted, dirs, outside):
    client, _, tmp = rooted
    os.symlink(tmp / "projects-evil", tmp / "link")  # a link from nowhere special out of the roots
    status, body, _ = client.post("/session/start", {"prompt": "x", "working_dir": outside.format(tmp=tmp)})
    assert (status, body["message"]) == (400, "working_dir is outside the allowed roots")
    assert str(tmp) not in body["message"]
    assert stored_session_ids(dirs) == set()


def test_a_link_inside_the_roots_to_outside_is_refused(rooted):
    client, allowed, tmp = rooted
    os.symlink(tmp / "projects-evil", allowed / "sneaky")
    assert client.post("/session/start", {"prompt": "x", "working_dir": str(allowed / "sneaky")})[0] == 400


@pytest.mark.files_only  # a goose file broken by hand
def test_a_corrupt_session_is_reported_without_its_path(client, dirs):
    (dirs["sessions"] / "broken.jsonl").write_text('{"working_dir": "/w"}\n{not json\n')
    status, body, _ = client.post("/session/reply", {"prompt": "x", "session_id": "broken"})
    assert (status, body["error"]) == (500, "session_corrupt")
    assert "line 2" in body["message"]
    assert str(dirs["sessions"]) not in body["message"] and ".jsonl" not in body["message"]


def test_provider_errors_and_switches_reveal_no_secret(client, fake_openai):
    from tests.fakes.core import Fail
    fake_openai.add(Fail(401, code="auth"))
    _, body, _ = client.post("/session/start", {"prompt": "x"})
    assert body["error"] == "provider_error" and fake_openai.api_key not in str(body)
    status, body, _ = client.post("/provider/config", {"provider": "groq"})
    assert status == 400 and "GROQ_API_KEY" in body["message"]
    _, config, _ = client.get("/provider/config")
    assert fake_openai.api_key not in str(config) and fake_openai.base_url not in str(config)


@pytest.mark.parametrize("path, body", [("/session/start", {"prompt": "x"}),
                                        ("/sessions/import", {"format": "json", "data": {"conversation": []}})])
@pytest.mark.parametrize("working_dir", ["", "relative/dir", " /lead"])
def test_a_working_dir_that_is_not_absolute_is_400(client, dirs, path, body, working_dir):
    status, answer, _ = client.post(path, {**body, "working_dir": working_dir})
    assert (status, answer["error"]) == (400, "validation_error") and "working_dir" in answer["errors"], answer
    assert list(dirs["sessions"].iterdir()) == []
