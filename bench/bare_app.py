"""The baseline: a bare Flask app doing the least each benchmarked endpoint must do.

Run under the same gunicorn settings as goose-api (``gunicorn bench.bare_app:app
-c gunicorn.conf.py``). No auth, no schemas, no logging, no hooks:

- ``GET /health`` and ``GET /extensions/list``: a constant JSON body.
- ``GET /session/<id>``: read the goose JSONL file and answer its metadata and messages.
- ``POST /session/start`` and ``/session/reply``: forward the prompt alone to the provider (``OPENAI_HOST``) and
  answer its text: the floor of a turn (one HTTP hop in, one out).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import requests
from flask import Flask, abort, jsonify, request

app = Flask(__name__)
SESSIONS = Path(os.environ.get("GOOSE_API_SESSIONS_DIR", "."))
PROVIDER = os.environ.get("OPENAI_HOST", "http://127.0.0.1:9") + "/v1/chat/completions"
http = requests.Session()


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/extensions/list")
def extensions():
    return jsonify(extensions=["developer"])


@app.get("/session/<session_id>")
def session(session_id: str):
    try:
        lines = (SESSIONS / f"{session_id}.jsonl").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        abort(404)
    return jsonify(session_id=session_id, metadata=json.loads(lines[0]),
                   messages=[json.loads(line) for line in lines[1:] if line])


@app.post("/session/start")
@app.post("/session/reply")
def reply():
    prompt = request.get_json()["prompt"]
    answer = http.post(PROVIDER, json={"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]},
                       headers={"Authorization": "Bearer bench-key"}, timeout=60).json()
    return jsonify(status="success", response=answer["choices"][0]["message"]["content"])
