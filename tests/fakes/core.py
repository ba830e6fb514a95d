"""The scripted core every fake provider API is built on.

A fake is a real HTTP server on 127.0.0.1 (port 0, a daemon thread), so it
serves this process and a gunicorn under test alike. A test scripts it with
steps, consumed one per request:

    with OpenAIFake([Reply("hello", usage=(12, 3)), Fail(429, retry_after=0)]) as fake:
        provider = OpenAIProvider(fake.settings())
        ...
        fake.assert_done()

``Reply`` answers in the API's real shape (streamed when the request asks for
it), ``Fail`` answers with the API's real error body, both after an optional
``delay``, or once the test opens the step's ``gate`` (``tests/support/gates.py``:
the way to keep a call in flight for as long as a test needs, with no sleep).
Every request is recorded (``fake.requests``); one that breaks the API's
documented format (checked against the official SDK's request types where
there is one: ``tests.fakes.sdk``) gets the status the service refuses it with
(400, or Mistral's 422) and is recorded in ``fake.violations``;
``assert_done()`` fails on those and on unconsumed steps. A request with no
step left is a violation too.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

from goose_api.settings import Settings
from tests.support.gates import Gate


@dataclass
class ToolCall:
    """A tool call the fake model makes; ``arguments`` as a str is sent verbatim (e.g. broken JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """A successful answer. ``stream``: True/False demands that the request (not) stream."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)          # (input tokens, output tokens)
    model: str | None = None                  # default: the model the request named
    delay: float = 0.0
    gate: Gate | None = None                  # held here until the test opens it
    stream: bool | None = None
    chunk_size: int = 3                       # characters per streamed text/argument piece
    drop_after: int | None = None             # streamed frames before the connection is cut
    finish: str | None = None                 # the service's own stop reason ("length", "MAX_TOKENS", ...)
    reasoning: str = ""                       # reasoning the model shows (DeepSeek's reasoning_content)
    usage_details: dict[str, Any] = field(default_factory=dict)  # more usage fields, in the service's names
    blocked: str | None = None                # Gemini: the prompt's blockReason (no candidates)
    index_zero: bool = False                  # OpenAI-style stream: every parallel call at index 0, new ids


@dataclass
class Fail:
    """An error answer with the API's real body; ``code`` picks a specific API error (e.g. context length)."""

    status: int
    message: str = "scripted failure"
    retry_after: float | str | None = None
    code: str | None = None
    delay: float = 0.0
    gate: Gate | None = None
    in_stream: bool = False                   # a streamed request gets 200 and the API's in-stream error
    headers: dict[str, str] = field(default_factory=dict)  # more response headers (rate-limit resets)
    body: dict[str, Any] | None = None        # the exact error body, when the test quotes the service


Step = Reply | Fail


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]           # lower-case names
    body: Any                         # parsed JSON, or None


def chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), max(1, size))]


def call_arguments_text(call: ToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def call_arguments_object(call: ToolCall) -> Any:
    """Arguments for APIs that send an object; a scripted broken string goes out as is."""
    return call.arguments


class ScriptedAPI:
    """Base of every fake: routing, recording, the step script, violations, serving.

    Subclasses implement ``matches``, ``validate``, ``authorized``,
    ``render_json``, ``render_stream``, ``error_body``, ``wants_stream`` and
    ``env``; the default model and provider name feed ``settings()``.
    """

    provider = ""
    default_model = ""
    stream_content_type = "text/event-stream"

    def __init__(self, steps: Iterable[Step] = (), *, api_key: str = "test-key"):
        self.api_key = api_key
        self.steps: list[Step] = list(steps)
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- scripting -------------------------------------------------------------------
    def add(self, *steps: Step) -> "ScriptedAPI":
        with self._lock:
            self.steps.extend(steps)
        return self

    def assert_done(self) -> None:
        with self._lock:
            problems = list(self.violations)
            if self.steps:
                problems.append(f"{len(self.steps)} scripted step(s) never requested: {self.steps}")
        assert not problems, "fake %s: %s" % (self.provider, "; ".join(problems))

    def last_body(self) -> Any:
        return self.requests[-1].body

    # --- serving ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ScriptedAPI":
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"fake-{self.provider}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "ScriptedAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **overrides: Any) -> Settings:
        """Settings whose provider, model and credentials point at this fake."""
        values: dict[str, Any] = {"provider": self.provider, "model": self.default_model,
                                  "connect_timeout": 2.0, "read_timeout": 10.0,
                                  "provider_retries": 2, "provider_retry_max_wait": 1.0}
        env = {**self.env(), **overrides.pop("env", {})}
        values.update(overrides)
        return Settings(**values, env=MappingProxyType(env))

    def server_env(self) -> dict[str, str]:
        """Environment for a goose-api process under test (gunicorn) that should use this fake."""
        env = {**self.env(), "GOOSE_API_PROVIDER": self.provider}
        if self.default_model:
            env["GOOSE_API_MODEL"] = self.default_model
        return env

    # --- hooks for each API -----------------------------------------------------------
    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def matches(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def authorized(self, request: Recorded) -> bool:
        raise NotImplementedError

    def auth_failure(self) -> Fail:
        """How the API answers a missing or wrong key."""
        return Fail(401, "invalid api key", code="auth")

    def validate(self, request: Recorded) -> list[str]:
        raise NotImplementedError

    def wants_stream(self, request: Recorded) -> bool:
        raise NotImplementedError

    def render_json(self, reply: Reply, request: Recorded) -> dict[str, Any]:
        raise NotImplementedError

    def render_stream(self, reply: Reply, request: Recorded) -> Iterator[bytes]:
        raise NotImplementedError

    def error_body(self, fail: Fail) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self, fail: Fail) -> bytes:
        """The frame an API sends when a stream fails after its 200 (``Fail(in_stream=True)``)."""
        raise NotImplementedError

    def violation_status(self, problems: list[str]) -> int:
        """The status the service refuses these problems with (422 where a schema check does it)."""
        return 400

    # --- one request ------------------------------------------------------------------
    def answer(self, request: Recorded) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body or an iterator of stream frames) for one request."""
        self.requests.append(request)
        if not self.matches(request.method, request.path):
            return self._violation(f"{request.method} {request.path} is not an endpoint of this API", 404)
        if not self.authorized(request):
            fail = self.auth_failure()
            return fail.status, {}, self.error_body(fail)
        problems = ["request body is not JSON"] if request.body is None else self.validate(request)
        if problems:
            return self._violation("; ".join(problems), self.violation_status(problems))
        with self._lock:
            step = self.steps.pop(0) if self.steps else None
        if step is None:
            return self._violation("unexpected request: no scripted step left", 400)
        if step.delay:
            self._stopping.wait(step.delay)
        if step.gate is not None:
            step.gate.hold(self._stopping)
        if isinstance(step, Fail) and step.in_stream and self.wants_stream(request):
            return 200, {"Content-Type": self.stream_content_type}, iter([self.stream_error(step)])
        if isinstance(step, Fail):
            headers = {} if step.retry_after is None else {"Retry-After": str(step.retry_after)}
            return step.status, {**headers, **step.headers}, step.body or self.error_body(step)
        streaming = self.wants_stream(request)
        if step.stream is not None and step.stream != streaming:
            return self._violation(f"the script expected stream={step.stream}", 400)
        if streaming:
            return 200, {"Content-Type": self.stream_content_type}, self.render_stream(step, request)
        return 200, {}, self.render_json(step, request)

    def _violation(self, problem: str, status: int) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.violations.append(problem)
        return status, {}, self.error_body(Fail(status, f"fake {self.provider} rejected the request: {problem}"))


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) is normal here, not a traceback.

    Its listen backlog takes a burst of 1,000 connections (the default, 5, drops
    them), so that under load the fake is never what a benchmark or test measures.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler_for(api: ScriptedAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: headers and body go out as two writes; with Nagle's algorithm the body would wait
        # for the client's delayed ACK (~40 ms on loopback), a cost no real API has.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            request = Recorded(self.command, split.path, query,
                               {k.lower(): v for k, v in self.headers.items()}, body)
            try:
                status, headers, payload = api.answer(request)
            except Exception as exc:  # a bug in the fake must fail the test, not hang it
                api.violations.append(f"the fake itself failed: {exc!r}")
                status, headers, payload = 500, {}, {"error": {"message": f"fake crashed: {exc!r}"}}
            if isinstance(payload, dict) or isinstance(payload, list):
                self._send_json(status, headers, payload)
            else:
                self._send_stream(status, headers, payload)

        def _send_json(self, status: int, headers: dict[str, str], payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, status: int, headers: dict[str, str], frames: Iterator[bytes | None]) -> None:
            """Chunked transfer; a ``None`` frame cuts the connection mid-stream."""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for frame in frames:
                if frame is None:
                    self.close_connection = True
                    self.wfile.flush()
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    return Handler


def sse(data: Any, event: str | None = None) -> bytes:
    """One Server-Sent Events frame."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def with_drop(frames: Iterable[bytes], reply: Reply) -> Iterator[bytes | None]:
    """Stop after ``reply.drop_after`` frames and cut the connection (a dropped stream)."""
    for count, frame in enumerate(frames):
        if reply.drop_after is not None and count >= reply.drop_after:
            yield None
            return
        yield frame
