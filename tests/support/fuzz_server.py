"""A live gunicorn for fuzzing: a provider that answers everything, nothing that can leave this machine."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.fakes.core import Recorded, Reply
from tests.fakes.openai import OpenAIFake
from tests.support.app import USER_KEY
from tests.support.live import LiveServer, live_env, start_live_server


class TolerantOpenAIFake(OpenAIFake):
    """The fake OpenAI API answering every well-formed request (it still rejects malformed ones)."""

    def answer(self, request: Recorded):
        with self._lock:
            if not self.steps:
                self.steps.append(Reply("fuzzed answer"))
        return super().answer(request)


@contextmanager
def fuzz_server(root: Path, **env: str) -> Iterator[tuple[LiveServer, OpenAIFake, dict[str, Path]]]:
    """Two workers; stdio commands refused, no local model to switch to, no failed-auth throttle; the admin
    key ``API_KEY`` and a key without admin, ``USER_KEY``.

    On exit: the fake saw no malformed request and the server logged no traceback.
    """
    dirs = {name: root / name for name in ("data", "sessions", "home", "work")}
    for path in dirs.values():
        path.mkdir()
    with TolerantOpenAIFake() as fake:
        server_env = live_env(fake, dirs, GOOSE_API_EXTENSION_COMMANDS="[]", GOOSE_API_WORKERS="2",
                              GOOSE_API_AUTH_FAILURE_LIMIT="100000",
                              GOOSE_API_API_KEYS=json.dumps([{"name": "fuzzer", "key": USER_KEY}]),
                              GOOSE_API_LOCAL_MODEL_PATH=str(root / "no-model.gguf"), **env)
        server = start_live_server(server_env, root, root / "gunicorn.log")
        try:
            yield server, fake, dirs
            assert server.process.poll() is None, "the server died"
        finally:
            server.stop()
        assert not fake.violations, fake.violations
    assert "Traceback" not in server.log(), server.log()[-3000:]
