"""Schemathesis hooks for the test suite's run (loaded through SCHEMATHESIS_HOOKS).

Generated extension configs may hold any http(s) URL; before a request goes
out, such a URL is pointed at a closed port on this machine so the server
never connects anywhere else (stdio commands are refused by the server's
``extension_commands: []``). An absolute ``working_dir`` is pointed at a
directory that exists (the schema can say "absolute", not "exists").
"""

import os

import schemathesis

CLOSED_LOOPBACK = "http://127.0.0.1:9/mcp"


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path == "/extensions/add" and "uri" in body:
        body["uri"] = CLOSED_LOOPBACK
    if case.path == "/session/start" and isinstance(body.get("working_dir"), str) \
            and body["working_dir"].startswith("/"):
        body["working_dir"] = "/"  # "absolute" is in the schema; "existing" cannot be: use one that exists


@schemathesis.check
def reveals_nothing(ctx, response, case):
    """No answer may carry a secret or a path outside the data dir (the test lists them in the env)."""
    text = response.text or ""
    for forbidden in filter(None, os.environ.get("GOOSE_TEST_FORBIDDEN", "").split("\n")):
        if forbidden in text:
            raise AssertionError(f"the answer reveals {forbidden[:6]}...: {text[:200]}")
    return None
