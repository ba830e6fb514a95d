"""A body over max_body_bytes gets a 413 the client can read, on a real gunicorn: a plain client still sending is
drained rather than reset, and a client that asks ``Expect: 100-continue`` gets the 413 instead of the 100 and is
never asked for the body."""

from __future__ import annotations

import http.client
import json
import socket

import requests

from tests.fakes.core import Reply
from tests.support.app import API_KEY
from tests.support.live import LiveServer

SIZE = 11 * 1024 * 1024  # over the default max_body_bytes (10 MiB)


def body_of(size: int) -> bytes:
    return b'{"prompt": "' + b"x" * (size - 14) + b'"}'


def head(length: int, *extra: str) -> bytes:
    lines = ["POST /session/start HTTP/1.1", "Host: goose", f"x-api-key: {API_KEY}",
             "Content-Type: application/json", f"Content-Length: {length}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP answer off the socket: status line, headers, body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = header.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(rest) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the connection closed mid-answer"
        rest += chunk
    return status, headers, rest


def connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def test_a_plain_client_sending_too_much_reads_the_413_instead_of_a_reset(live_server):
    with connect(live_server) as sock:
        sock.sendall(head(SIZE))
        sock.sendall(body_of(SIZE))  # the whole body: the server reads and drops it rather than reset the connection
        status, headers, payload = read_answer(sock)
    assert status.startswith("HTTP/1.1 413"), status
    answer = json.loads(payload)
    assert (answer["error"], answer["limit"]) == ("payload_too_large", 10 * 1024 * 1024)
    assert headers["x-content-type-options"] == "nosniff" and headers["x-request-id"]
    assert live_server.get("/health").status_code == 200


def test_http_client_and_requests_read_the_413(live_server):
    connection = http.client.HTTPConnection(live_server.url.removeprefix("http://"), timeout=60)
    connection.request("POST", "/session/start", body=body_of(SIZE),
                       headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 413 and json.loads(answer.read())["error"] == "payload_too_large"
    connection.close()
    big = requests.post(live_server.url + "/session/start", data=body_of(SIZE), timeout=60,
                        headers={"x-api-key": API_KEY, "Content-Type": "application/json"})
    assert big.status_code == 413 and big.json()["error"] == "payload_too_large"


def test_expect_100_continue_over_the_limit_is_answered_413_without_the_body(live_server):
    with connect(live_server) as sock:
        sock.sendall(head(SIZE, "Expect: 100-continue"))
        status, _, payload = read_answer(sock)  # the first answer on the wire: no "100 Continue" before it
        assert status.startswith("HTTP/1.1 413"), status
        assert json.loads(payload)["error"] == "payload_too_large"
        assert sock.recv(65536) == b"", "the connection is closed: the body it announced is not wanted"


def test_expect_100_continue_within_the_limit_still_gets_its_100(live_server, fake_openai):
    fake_openai.add(Reply("fine"))
    payload = json.dumps({"prompt": "hi"}).encode()
    continue_line = b"HTTP/1.1 100 Continue\r\n\r\n"
    with connect(live_server) as sock:
        sock.sendall(head(len(payload), "Expect: 100-continue"))
        got = b""
        while len(got) < len(continue_line):
            got += sock.recv(len(continue_line) - len(got))
        assert got == continue_line
        sock.sendall(payload)
        status, _, body = read_answer(sock)
    assert status.startswith("HTTP/1.1 200") and json.loads(body)["response"] == "fine", (status, body)
