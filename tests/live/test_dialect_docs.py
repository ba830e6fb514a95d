"""Every snippet of the dialect pages (docs/responses.md, chat-completions.md, mcp.md) runs unchanged.

Each fenced block runs in its own process with only ``GOOSE_API_URL`` and
``GOOSE_API_KEY`` set, against a fresh gunicorn (approve mode, so the
approval example has something to approve) whose provider is the scripted fake.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.fakes.core import Reply, ToolCall
from tests.support.app import API_KEY, ROOT
from tests.support.gates import Gate
from tests.support.live import live_env, start_live_server

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(page: str) -> list[tuple[str, str]]:
    return BLOCK.findall((ROOT / "docs" / page).read_text())


def run_block(language: str, code: str, url: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "GOOSE_API_URL": url,
           "GOOSE_API_KEY": API_KEY}
    command = ["bash", "-euc", code] if language == "bash" else [sys.executable, "-c", code]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"{language} block failed:\n{code}\n--- stderr ---\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def server(fake_openai, dirs, tmp_path):
    live = start_live_server(live_env(fake_openai, dirs, GOOSE_API_MODE="approve"), tmp_path,
                             tmp_path / "gunicorn.log")
    yield live
    live.stop()


def test_the_responses_page_runs(server, fake_openai):
    page = blocks("responses.md")
    assert [language for language, _ in page] == ["bash", "python", "python", "python", "python", "python"]
    run_block(*page[0], server.url)
    fake_openai.add(Reply("Paris."))
    assert "Paris." in run_block(*page[1], server.url)
    fake_openai.add(Reply("Once upon a time."))
    out = run_block(*page[2], server.url)
    assert "Once upon a time." in out and "status: completed" in out
    fake_openai.add(Reply("You are Ada."), Reply("Ada."), Reply("A-D-A."))
    assert run_block(*page[3], server.url).strip() == "Ada. | A-D-A."
    gate = Gate()
    fake_openai.add(Reply("never shown", gate=gate))
    assert run_block(*page[4], server.url).split() == ["in_progress", "in_progress", "cancelled"]
    gate.open()
    fake_openai.add(Reply("", tool_calls=[ToolCall("developer__shell", {"command": "ls"}, id="c1")]),
                    Reply("Here they are."))
    out = run_block(*page[5], server.url)
    assert "approve? developer shell" in out and out.strip().endswith("Here they are.")


def test_the_chat_completions_page_runs(server, fake_openai, dirs):
    page = blocks("chat-completions.md")
    assert [language for language, _ in page] == ["python"]
    fake_openai.add(Reply("Hi!"), Reply("Old pond, frog."))
    out = run_block(*page[0], server.url)
    assert "['goose', 'goose:openai/gpt-4o']" in out and "Hi! 15" in out and "Old pond, frog." in out
    assert len(list(dirs["sessions"].glob("*.jsonl"))) == 1, "the second request continued the first's session"


def test_the_mcp_page_runs(server, fake_openai):
    page = blocks("mcp.md")
    assert [language for language, _ in page] == ["python"]
    fake_openai.add(Reply("Hello."))
    out = run_block(*page[0], server.url)
    assert out.startswith("Hello.") and "success" in out and "1 session(s)" in out
