"""gunicorn as the project configures it: no control socket unless the control_socket setting asks for one."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import live_env, start_live_server

pytestmark = pytest.mark.live


def test_no_control_socket_is_made_in_home_by_default(fake_openai, dirs, tmp_path):
    server = start_live_server(live_env(fake_openai, dirs), tmp_path, tmp_path / "gunicorn.log")
    try:
        assert server.get("/extensions/list").status_code == 200
        assert not (dirs["home"] / ".gunicorn").exists(), server.log()
        assert [path for path in tmp_path.rglob("*.ctl")] == []
    finally:
        assert server.stop() == 0


def test_the_control_socket_is_where_the_setting_says(fake_openai, dirs, tmp_path):
    socket_path = tmp_path / "run" / "goose-api.ctl"
    socket_path.parent.mkdir()
    env = live_env(fake_openai, dirs, GOOSE_API_CONTROL_SOCKET=str(socket_path))
    server = start_live_server(env, tmp_path, tmp_path / "gunicorn.log")
    try:
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        answer = subprocess.run([str(Path(sys.executable).parent / "gunicornc"), "-s", str(socket_path), "-j",
                                 "-c", "show workers"], capture_output=True, text=True, timeout=30)
        assert answer.returncode == 0, answer.stderr
        assert len(json.loads(answer.stdout)["workers"]) == 1
        assert not (dirs["home"] / ".gunicorn").exists()
    finally:
        assert server.stop() == 0
