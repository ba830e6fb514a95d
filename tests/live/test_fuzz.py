"""Fuzzing a live gunicorn with bad (and some good) input: never a 5xx, no session line lost, still up.

Half the keyed requests use a key without admin: its server-wide changes are always 403, and the
admin's session does not exist for it.

(Request lines past gunicorn's 4094-byte limit are answered by gunicorn itself, before the app, with
its own HTML 414 page; the raw-socket test covers them for "stays up" only.)

Hypothesis drives requests with arbitrary methods, paths, content types, keys and
bodies (bytes, any JSON, near-valid objects, session ids aimed at a known
session and at paths outside the sessions dir). A session written before the
run must still validate as goose's format afterwards, with its lines a prefix
of what is there now (good replies may add lines; nothing may be lost or
changed).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.app import API_KEY, USER_KEY
from tests.support.fuzz_server import fuzz_server
from tests.support.goose_format import assert_goose_session
from tests.support.live import LiveServer

KEEPER = "keeper"
ADMIN_ONLY = {"/provider/config", "/extensions/add", "/extensions/remove"}  # for POST
PATHS = ["/session/start", "/session/reply", "/provider/config", "/extensions/add", "/extensions/remove",
         "/extensions/list", "/extensions", "/metrics", "/ready", "/health", "/openapi.json", "/docs",
         "/webhooks/secret", "/session/keeper", "/session/keeper/events",
         "/docs/assets/swagger-ui.css", "/docs/assets/..%2f..%2fetc%2fpasswd", "/session/other",
         "/session/other/events", "/session/..%2fkeeper", "/%00", "/" + "a" * 3000, "/session/start/"]
IDS = st.one_of(st.sampled_from([KEEPER, "../keeper", "..", "/etc/passwd", "keeper.jsonl", "", "a" * 129,
                                 "kéeper", "keeper\n", "nul\x00l"]), st.text(max_size=40))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=12)
NEAR_VALID = st.fixed_dictionaries({}, optional={
    "prompt": st.one_of(st.text(max_size=60), JSON), "session_id": st.one_of(IDS, JSON),
    "working_dir": st.sampled_from(["/", "relative", "/nonexistent", "/etc/passwd", "", "/tmp/../"]),
    "provider": st.sampled_from(["openai", "nope", "", "groq"]), "model": st.text(max_size=20),
    "type": st.sampled_from(["stdio", "sse", "builtin", "streamable_http", "other"]),
    "name": st.text(max_size=20), "cmd": st.text(max_size=20), "uri": st.sampled_from(["http://127.0.0.1:9/x", "x"]),
    "async": JSON, "stream": JSON})
BODIES = st.one_of(st.none(), st.binary(max_size=300), JSON, NEAR_VALID)
HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1",
                                     "multipart/form-data", "application/x-www-form-urlencoded", "", "*/*"]),
    "x-api-key": st.sampled_from([API_KEY, API_KEY, USER_KEY, USER_KEY, "wrong", ""]),
    "Accept": st.sampled_from(["application/json", "text/html", "*/*", "text/plain;q=0.1"]),
    "X-Request-ID": st.from_regex(r"\A[!-~]([ -~]{0,150}[!-~])?\Z"),  # any value a client can send
    "Origin": st.sampled_from(["https://evil.example", "null"])})


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[tuple[LiveServer, Path, list[str]]]:
    with fuzz_server(tmp_path_factory.mktemp("fuzz"), GOOSE_API_MAX_BODY_BYTES="65536") as (server, _, dirs):
        started = server.post("/session/start", {"prompt": "keep me", "session_id": KEEPER})
        assert started.status_code == 200, started.text
        keeper = dirs["sessions"] / f"{KEEPER}.jsonl"
        assert_goose_session(keeper)
        yield server, keeper, keeper.read_text().splitlines()[1:]


def _send(server: LiveServer, method: str, path: str, headers: dict, body) -> requests.Response:
    kwargs = {"data": body} if isinstance(body, bytes) else ({} if body is None else {"json": body})
    if isinstance(body, dict) and "uri" in body:
        body["uri"] = "http://127.0.0.1:9/x"  # never connect anywhere but this machine
    return requests.request(method, server.url + path, headers=headers, timeout=60, allow_redirects=False,
                            **kwargs)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(method=st.sampled_from(["GET", "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
       path=st.sampled_from(PATHS), headers=HEADERS, body=BODIES)
def test_bad_input_never_gets_a_5xx(fuzzed, method, path, headers, body):
    server, keeper, before = fuzzed
    if method == "DELETE" and KEEPER in path:
        return  # deleting it is a valid request, not a lost line
    answer = _send(server, method, path, headers, body)
    assert answer.status_code < 500 or (path == "/extensions/add" and answer.status_code == 502), \
        (answer.status_code, answer.text[:500])
    if headers.get("x-api-key") == USER_KEY:
        if method == "POST" and path in ADMIN_ONLY:
            assert answer.status_code == 403, (answer.status_code, answer.text[:300])
        if KEEPER in path and "%2f" not in path and method != "OPTIONS" and answer.status_code not in (404, 405):
            # refused before the session was looked up (a bad body, a content type): then a session that
            # does not exist gets the same refusal, so the answer says nothing about the admin's session
            unknown = _send(server, method, path.replace(KEEPER, "no_such_session"), headers, body)
            assert answer.status_code == unknown.status_code, "the admin's session is not the fuzzer's"
    if method != "HEAD" and answer.status_code >= 400:
        assert answer.headers["Content-Type"].startswith("application/json"), answer.text[:200]
        assert answer.json()["status"] == "error"
    _, messages = assert_goose_session(keeper)
    assert keeper.read_text().splitlines()[1:len(before) + 1] == before


# --- the limits of issue 14: nesting, body size, run ids, Expect ----------------------------------

LIMITED_PATHS = ["/session/start", "/session/reply", "/sessions/import", "/extensions/add", "/session/keeper/fork",
                 "/v1/responses", "/v1/chat/completions"]
RUN_IDS = st.sampled_from(["../keeper/run_0123456789abcdef", "..%2Fkeeper%2Frun_0123456789abcdef",
                           "run_0123456789abcdef%0A", "run_0123456789abcdef", "run_", "%00", "a" * 300])
DEEP = st.integers(min_value=95, max_value=110).map(lambda depth: ('{"prompt": "x", "session_id": "d", "data": '
                                                                  + "[" * depth + "]" * depth + "}").encode())
OVERSIZED = st.integers(min_value=65537, max_value=70000).map(lambda size: b"{" + b" " * (size - 2) + b"}")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(path=st.sampled_from(LIMITED_PATHS), body=st.one_of(DEEP, OVERSIZED), run_id=RUN_IDS,
       expect=st.booleans())
def test_limits_are_clear_4xx_answers(fuzzed, path, body, run_id, expect):
    """Nesting past the limit is 400, a body past max_body_bytes 413 (with or without Expect: 100-continue), and a
    run id that is not one never reaches a file: always a JSON error, never a 5xx, the keeper untouched."""
    server, keeper, before = fuzzed
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json",
               **({"Expect": "100-continue"} if expect else {})}
    answer = requests.post(server.url + path, data=body, headers=headers, timeout=60)
    assert answer.status_code in ((413,) if len(body) > 65536 else (400,)), (answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    events = requests.get(f"{server.url}/session/{KEEPER}/events?run_id={run_id}", headers={"x-api-key": API_KEY},
                          timeout=60)
    assert events.status_code in (400, 404) and events.json()["status"] == "error", events.text[:300]
    assert keeper.read_text().splitlines()[1:len(before) + 1] == before


def test_garbage_on_the_wire_leaves_the_server_up(fuzzed):
    server, keeper, before = fuzzed
    host, port = server.url.removeprefix("http://").split(":")
    for garbage in (b"\x00\xff" * 100 + b"\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /session/start HTTP/1.1\r\n"
                    b"Host: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n",
                    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                    b"POST /session/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    assert server.get("/health").status_code == 200
    assert_goose_session(keeper)
    assert keeper.read_text().splitlines()[1:len(before) + 1] == before
