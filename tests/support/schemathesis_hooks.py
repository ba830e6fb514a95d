"""Schemathesis hooks for the test suite's run (loaded through SCHEMATHESIS_HOOKS).

Generated extension configs and turn webhooks may hold any http(s) URL;
before a request goes out, such a URL is pointed at a closed port on this
machine so the server never connects anywhere else (stdio commands are refused
by the server's ``extension_commands: []``). An absolute ``working_dir`` is
pointed at a directory that exists (the schema can say "absolute", not
"exists"). A well-formed ``Idempotency-Key`` is made unique per request:
generated cases reuse short values, and a key sent again with another body is
rightly 422, which is not what those cases test (tests/api/test_idempotency.py does).
"""

import os
import re
import uuid
from collections.abc import MutableMapping

import schemathesis

CLOSED_LOOPBACK = "http://127.0.0.1:9/mcp"
KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    for headers in (case.headers, kwargs.get("headers")):
        if isinstance(headers, MutableMapping) and KEY.match(str(headers.get("Idempotency-Key", ""))):
            headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("webhook"), str) and body["webhook"].startswith(("http://", "https://")):
        body["webhook"] = CLOSED_LOOPBACK
    if case.path == "/extensions/add" and "uri" in body:
        body["uri"] = CLOSED_LOOPBACK
    if case.path in ("/session/start", "/sessions/import") and isinstance(body.get("working_dir"), str) \
            and body["working_dir"].startswith("/"):
        body["working_dir"] = "/"  # "absolute" is in the schema; "existing" cannot be: use one that exists


@schemathesis.check
def reveals_nothing(ctx, response, case):
    """No answer may carry a secret or a path outside the data dir (the test lists them in the env)."""
    text = (response.content or b"").decode("utf-8", errors="replace")  # an export may be binary (sessions.db)
    for forbidden in filter(None, os.environ.get("GOOSE_TEST_FORBIDDEN", "").split("\n")):
        if forbidden in text:
            raise AssertionError(f"the answer reveals {forbidden[:6]}...: {text[:200]}")
    return None
