"""The OpenAPI document: complete, with the key schemes, and the server keeps to it (schemathesis)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.fakes.openai import OpenAIFake
from tests.support.app import API_KEY, ROOT, USER_KEY
from tests.support.fuzz_server import fuzz_server
from tests.support.live import LiveServer

UNDOCUMENTED = {"static", "api-docs.openapi_json", "docs.page", "docs.init", "docs.asset"}
# The dialects follow specifications of their own (OpenAI's API reference, MCP's): docs/responses.md,
# docs/chat-completions.md and docs/mcp.md describe them, and tests/web and tests/live check them with the real SDKs.
DIALECTS = {"responses.create", "responses.retrieve", "responses.cancel", "chat.complete", "chat.models",
            "chat.show_model", "mcp.mcp"}
PUBLIC = {("/health", "get")}


def test_every_route_is_documented_with_its_security_and_errors(app):
    spec = app.test_client().get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "apiKey", "in": "header",
                                                                    "name": "x-api-key"}
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"ApiKeyAuth": []}, {"BearerAuth": []}]
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED | DIALECTS:
            continue
        path = _openapi_path(rule.rule)
        assert path in spec["paths"], f"{rule.rule} is not in the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path][method.lower()]
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (path, method)
            if (path, method.lower()) in PUBLIC:
                assert operation["security"] == []
            else:
                assert "security" not in operation and "401" in responses and "429" in responses, (path, method)
                assert responses["429"]["content"] == responses["401"]["content"]
            if "requestBody" in operation:
                assert "400" in responses and "415" in responses, (path, method)


HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def test_other_methods_are_405_with_the_documented_allow(client):
    spec = client.get("/openapi.json")[1]
    for path, operations in spec["paths"].items():
        documented = {method.upper() for method in operations} & HTTP_METHODS  # not "parameters"
        for method in HTTP_METHODS - documented:
            status, body, response = client.call(method, path.replace("{", "").replace("}", ""))
            assert (status, body["error"]) == (405, "method_not_allowed"), (method, path)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allowed - {"HEAD", "OPTIONS"} == documented, (method, path, allowed)


def _openapi_path(rule: str) -> str:
    """Flask's ``/session/<id>`` (or ``<string:id>``) as OpenAPI's ``/session/{id}``."""
    out = rule
    while "<" in out:
        start, end = out.index("<"), out.index(">")
        out = out[:start] + "{" + out[start + 1:end].split(":")[-1] + "}" + out[end + 1:]
    return out


# --- schemathesis against a live gunicorn on loopback ------------------------------------------

@pytest.fixture(scope="module")
def fuzz_server_and_fake(tmp_path_factory) -> Iterator[tuple[LiveServer, OpenAIFake]]:
    # Low limits (issue 14), so that generated requests reach them: each answer must still be a documented one.
    limits = {"GOOSE_API_MAX_QUEUED_TURNS": "1", "GOOSE_API_IMPORT_MAX_BYTES": "20000",
              "GOOSE_API_IMPORT_MAX_MESSAGES": "5", "GOOSE_API_MAX_TOOL_OUTPUT_CHARS": "500",
              "GOOSE_API_APPROVAL_TIMEOUT": "2", "GOOSE_API_MAX_EXTENSION_TIMEOUT": "30"}
    with fuzz_server(tmp_path_factory.mktemp("schemathesis"), **limits) as (server, fake, _):
        yield server, fake


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("key", [API_KEY, USER_KEY], ids=["admin", "non-admin"])
def test_schemathesis_run_finds_nothing(fuzz_server_and_fake, tmp_path, key):
    """``schemathesis run`` over every documented operation: examples, coverage (incl. wrong methods) and fuzzing.

    Every check is on: no 5xx, status codes / content types / headers / bodies as documented, invalid
    input rejected, valid input accepted, the key enforced, 405 with a correct Allow header. Run as the
    admin key and as a key without admin (whose server-wide changes are 403, as documented).
    """
    server, fake = fuzz_server_and_fake
    root = server.log_path.parent
    # The sessions dir is not forbidden: GET /sessions lists each file's path, as `goose session list` does.
    forbidden = [API_KEY, USER_KEY, fake.api_key, str(root / "home"), str(ROOT)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks", "PYTHONPATH": str(ROOT),
           "GOOSE_TEST_FORBIDDEN": "\n".join(forbidden)}
    command = [str(Path(sys.executable).parent / "schemathesis"),
               "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run", server.url + "/openapi.json",
               "--checks", "all", "--phases", "examples,coverage,fuzzing", "--max-examples", "25",
               "--header", f"x-api-key: {key}", "--request-timeout", "60", "--workers", "2",
               "--seed", "1", "--suppress-health-check", "all", "--no-color", "--generation-database", "none"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    assert "No issues found" in result.stdout or " passed" in result.stdout, result.stdout[-3000:]
