"""The app in-process: settings over isolated dirs and a fake provider, and Flask's test client with the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from goose_api.settings import Settings
from tests.fakes.openai import OpenAIFake

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-api-key"
USER_KEY = "test-user-key"  # a named key without admin (the fuzzing servers know it as "fuzzer")


def settings_for(fake: OpenAIFake, dirs: dict[str, Path], **overrides: Any) -> Settings:
    values = dict(data_dir=str(dirs["data"]), sessions_dir=str(dirs["sessions"]), api_key=API_KEY,
                  working_dir=str(dirs["work"]), provider_retries=1, provider_retry_max_wait=0.5)
    if dirs.get("database_url"):  # tests/api/conftest.py's backend fixture: the PostgreSQL backend
        values["database_url"] = str(dirs["database_url"])
    values.update(overrides)
    return fake.settings(**values)


class ApiClient:
    """Flask's test client with the API key set, answering (status, json, response)."""

    def __init__(self, flask_client, key: str | None = API_KEY):
        self.flask = flask_client
        self.key = key

    def call(self, method: str, path: str, json: Any = None, headers: dict | None = None, **kw):
        headers = {**({"x-api-key": self.key} if self.key else {}), **(headers or {})}
        response = self.flask.open(path, method=method, json=json, headers=headers, **kw)
        return response.status_code, response.get_json(silent=True), response

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw):
        return self.call("POST", path, json=json, **kw)
