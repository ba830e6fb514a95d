"""Real third-party servers over every transport: mcp-server-time (PyPI) over stdio, and
server-everything (npm) over stdio, SSE and streamable HTTP; plus headers and notifications."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

import pytest

from goose_api.errors import ToolCallFailed
from tests.support.mcp_fixtures import (  # noqa: F401
    LOOPBACK,
    ROOT,
    accepts_connections,
    everything_server,
    everything_stdio,
    free_port,
    make_registry,
    misbehaving,
    python_server,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)
TINY_PNG_PREFIX = "iVBORw0KGgo"


def test_mcp_server_time_over_stdio(make_registry):
    registry = make_registry()
    registry.add(python_server("time", "-m", "mcp_server_time", "--local-timezone", "UTC"))
    tools = {tool.name: tool for tool in registry.tools()}
    assert set(tools) == {"time__get_current_time", "time__convert_time"}
    assert tools["time__get_current_time"].input_schema["required"] == ["timezone"]
    [item] = registry.call_tool("time__convert_time", {"source_timezone": "UTC", "time": "12:00",
                                                      "target_timezone": "Asia/Tokyo"})
    assert json.loads(item["text"])["target"]["datetime"].startswith("20")
    assert "21:00" in item["text"]
    with pytest.raises(ToolCallFailed, match="Mars/Olympus"):
        registry.call_tool("time__get_current_time", {"timezone": "Mars/Olympus"})


def _exercise_everything(registry, key: str) -> None:
    tools = {tool.name: tool for tool in registry.tools()}
    assert {f"{key}__echo", f"{key}__get-sum", f"{key}__get-tiny-image"} <= set(tools)
    assert tools[f"{key}__echo"].annotations["readOnlyHint"] is True
    assert registry.call_tool(f"{key}__echo", {"message": "hi"}) == [{"type": "text", "text": "Echo: hi"}]
    assert registry.call_tool(f"{key}__get-sum", {"a": 2, "b": 3}) == [
        {"type": "text", "text": "The sum of 2 and 3 is 5."}]
    images = [c for c in registry.call_tool(f"{key}__get-tiny-image", {}) if c["type"] == "image"]
    assert images and images[0]["mimeType"] == "image/png" and images[0]["data"].startswith(TINY_PNG_PREFIX)
    assert "Everything" in registry.instructions()[key]


@pytest.mark.npm
def test_everything_over_stdio(make_registry):
    registry = make_registry()
    registry.add(everything_stdio())
    _exercise_everything(registry, "everything")


@pytest.mark.npm
def test_everything_over_sse(make_registry):
    registry = make_registry(extension_hosts=LOOPBACK)
    with everything_server("sse") as url:
        registry.add({"type": "sse", "name": "everything sse", "uri": f"{url}/sse", "timeout": 30})
        _exercise_everything(registry, "everything_sse")
        assert registry.details()[0]["pid"] is None


@pytest.mark.npm
def test_everything_over_streamable_http(make_registry):
    registry = make_registry(extension_hosts=LOOPBACK)
    with everything_server("streamableHttp") as url:
        registry.add({"type": "streamable_http", "name": "everything-http", "uri": f"{url}/mcp", "timeout": 30})
        _exercise_everything(registry, "everything-http")


@pytest.mark.npm
def test_content_kinds_and_annotations_in_goose_shape(make_registry):
    registry = make_registry()
    registry.add(everything_stdio("ev"))
    text, image = registry.call_tool("ev__get-annotated-message", {"messageType": "error", "includeImage": True})
    assert text == {"type": "text", "text": "Error: Operation failed",
                    "annotations": {"audience": ["user", "assistant"], "priority": 1.0}}
    assert image["type"] == "image" and image["mimeType"] == "image/png" and "annotations" in image
    intro, resource, _ = registry.call_tool("ev__get-resource-reference", {"resourceType": "Text", "resourceId": 2})
    assert resource["type"] == "resource"
    assert resource["resource"]["uri"] == "demo://resource/dynamic/text/2"
    assert resource["resource"]["mimeType"] == "text/plain" and "Resource 2" in resource["resource"]["text"]
    blob = registry.call_tool("ev__get-resource-reference", {"resourceType": "Blob", "resourceId": 1})[1]
    assert set(blob["resource"]) == {"uri", "mimeType", "blob"}
    links = registry.call_tool("ev__get-resource-links", {"count": 2})
    assert [item["type"] for item in links] == ["text", "text", "text"]  # resource_link is not a goose kind
    assert links[1]["text"].startswith("Resource link: ") and "demo://resource/dynamic/" in links[1]["text"]
    [structured] = registry.call_tool("ev__get-structured-content", {"location": "New York"})
    assert "temperature" in json.loads(structured["text"])


@pytest.mark.npm
def test_progress_notifications_reach_the_caller(make_registry):
    registry = make_registry()
    registry.add(everything_stdio("ev"))
    events: list[dict] = []
    result = registry.call_tool("ev__trigger-long-running-operation", {"duration": 0.2, "steps": 2},
                                on_notification=events.append)
    assert "completed" in result[0]["text"]
    assert [(e["type"], e["extension"], e["progress"], e["total"]) for e in events] == [
        ("progress", "ev", 1.0, 2.0), ("progress", "ev", 2.0, 2.0)]


def test_progress_and_log_notifications_from_a_modern_server(make_registry):
    registry = make_registry()
    registry.add(misbehaving("fake"))
    events: list[dict] = []
    assert registry.call_tool("fake__report", {"steps": 2}, on_notification=events.append) == [
        {"type": "text", "text": "2 steps done"}]
    progress = [e for e in events if e["type"] == "progress"]
    logs = [e for e in events if e["type"] == "log"]
    assert [(e["progress"], e["message"]) for e in progress] == [(1.0, "step 1"), (2.0, "step 2")]
    assert [(e["level"], e["data"]) for e in logs] == [("info", "log line 1"), ("info", "log line 2")]


@contextmanager
def header_echo_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakes" / "header_echo_server.py"), str(port)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or accepts_connections(port), 30, "the header echo server to listen")
        assert proc.poll() is None, "the header echo server exited"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_headers_are_sent_and_kept_secret(make_registry):
    registry = make_registry(extension_hosts=LOOPBACK)
    with header_echo_server() as url:
        registry.add({"type": "streamable_http", "name": "echo", "uri": url, "timeout": 30,
                      "headers": {"Authorization": "Bearer t0ken-value", "X-Team": "geese"}})
        assert registry.call_tool("echo__header", {"name": "Authorization"}) == [
            {"type": "text", "text": "Bearer t0ken-value"}]
        assert registry.call_tool("echo__header", {"name": "x-team"})[0]["text"] == "geese"
        assert "t0ken" not in json.dumps(registry.details())


@pytest.mark.npm
def test_a_remote_server_that_goes_away_is_marked_failed(make_registry):
    registry = make_registry(extension_hosts=LOOPBACK)
    with everything_server("sse") as url:
        registry.add({"type": "sse", "name": "remote", "uri": f"{url}/sse", "timeout": 10})
        assert registry.details()[0]["status"] == "running"
    wait_until(lambda: registry.details()[0]["status"] == "failed", 15, "the SSE connection to be marked failed")
    with pytest.raises(ToolCallFailed, match="could not be restarted"):
        registry.call_tool("remote__echo", {"message": "anyone?"})
