"""A zero-cost OpenAI chat-completions stand-in: reads the request, answers one fixed body.

Unlike the scripted fakes in tests/fakes (which parse and validate every
request), this does as little as possible, so what the benchmarks measure is
goose-api's cost, not the fake's. It times its own work per request (from the
request line to the last byte of the answer, ``delay`` included) so a
benchmark can subtract provider time from wall time.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "gpt-4o",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # 200 sessions connect at once in the concurrency benchmark

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed mid-call is expected here
            super().handle_error(request, client_address)


class ProviderStub:
    """``with ProviderStub(delay=0) as stub: env = stub.env()``; ``stub.durations`` holds seconds per call."""

    HOLD = b"HOLD-THIS-TURN"       # a request containing this waits until ``release()`` (a turn held open)
    SLOW = b"TAKE-ONE-SECOND"      # ... takes ``slow_delay`` seconds (the model's time in a burst)
    TOOL = b"CALL-THE-ECHO-TOOL"   # ... is answered with a call of the request's ``*echo`` tool, until a tool
    #                                result is in the conversation (a tool-call turn: two provider calls)

    def __init__(self, delay: float = 0.0, text: str = "Done.", slow_delay: float = 1.0):
        self.delay = delay
        self.slow_delay = slow_delay
        self.released = threading.Event()
        self.arrivals: list[float] = []  # perf_counter() when each request not held arrived
        self.held = 0                    # requests held now
        self.body = json.dumps({**ANSWER, "choices": [{**ANSWER["choices"][0], "message": {
            "role": "assistant", "content": text}}]}).encode()
        self.durations: list[float] = []
        self.request_bytes: list[int] = []
        self.calls_in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def parse_request(self) -> bool:
                self._t0 = time.perf_counter()
                return super().parse_request()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = self.rfile.read(length)
                if stub.HOLD in request:
                    with stub._lock:
                        stub.held += 1
                    stub.released.wait()
                    with stub._lock:
                        stub.held -= 1
                else:
                    with stub._lock:
                        stub.arrivals.append(self._t0)
                with stub._lock:
                    stub.calls_in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.calls_in_flight)
                delay = stub.slow_delay if stub.SLOW in request else stub.delay
                if delay:
                    time.sleep(delay)
                body = stub.tool_call(request) if stub.TOOL in request else stub.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with stub._done:
                    stub.calls_in_flight -= 1
                    stub.durations.append(time.perf_counter() - self._t0)
                    stub.request_bytes.append(length)
                    stub._done.notify_all()

            def log_message(self, *args) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def tool_call(request: bytes) -> bytes:
        """A call of the request's echo tool; once a tool result is in the conversation, the final answer."""
        data = json.loads(request)
        if any(message.get("role") == "tool" for message in data.get("messages", [])):
            answer = "The tool echoed the text."
            return json.dumps({**ANSWER, "choices": [{**ANSWER["choices"][0], "message": {
                "role": "assistant", "content": answer}}]}).encode()
        name = next(t["function"]["name"] for t in data.get("tools", []) if t["function"]["name"].endswith("echo"))
        call = {"id": "call_bench_echo", "type": "function",
                "function": {"name": name, "arguments": json.dumps({"text": "bench"})}}
        return json.dumps({**ANSWER, "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None, "tool_calls": [call]}}]}).encode()

    def wait_calls(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` calls are recorded (the caller may see an answer before its timing is)."""
        with self._done:
            return self._done.wait_for(lambda: len(self.durations) >= count, timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What a goose-api process needs to use this stub as its OpenAI provider."""
        return {"GOOSE_API_PROVIDER": "openai", "GOOSE_API_MODEL": "gpt-4o", "OPENAI_API_KEY": "bench-key",
                "OPENAI_HOST": self.url, "GOOSE_API_PROVIDER_RETRIES": "0"}

    def __enter__(self) -> "ProviderStub":
        self._thread.start()
        return self

    def release(self) -> None:
        """Let every held request (and any later one) be answered."""
        self.released.set()

    def __exit__(self, *exc) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
