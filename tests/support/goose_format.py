"""A strict reader of goose v1.0 session files, independent of the code under test.

Every session file a test writes goes through ``assert_goose_session``: the
goose CLI refuses a session over one bad line, so these checks are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

I32_MAX = 2**31 - 1
METADATA_KEYS = ["working_dir", "description", "schedule_id", "message_count", "total_tokens",
                 "input_tokens", "output_tokens", "accumulated_total_tokens",
                 "accumulated_input_tokens", "accumulated_output_tokens"]
TOKEN_KEYS = METADATA_KEYS[4:]


def _fail(path: Path, line: int, why: str) -> None:
    raise AssertionError(f"{path}:{line}: {why}")


def _check_mcp(path: Path, n: int, item: object) -> None:
    if not isinstance(item, dict) or item.get("type") not in ("text", "image", "resource"):
        _fail(path, n, f"tool result content must be MCP text/image/resource, got {item!r}")
    if item["type"] == "text" and not isinstance(item.get("text"), str):
        _fail(path, n, "MCP text without text")
    if item["type"] == "image" and not (isinstance(item.get("data"), str) and isinstance(item.get("mimeType"), str)):
        _fail(path, n, "MCP image without data/mimeType")
    if item["type"] == "resource":
        res = item.get("resource")
        if not isinstance(res, dict) or not isinstance(res.get("uri"), str):
            _fail(path, n, "MCP resource without uri")


def _check_content(path: Path, n: int, role: str, item: object) -> None:
    if not isinstance(item, dict):
        _fail(path, n, "content item is not an object")
    kind = item.get("type")
    if kind == "text":
        if set(item) != {"type", "text"} or not isinstance(item["text"], str):
            _fail(path, n, f"bad text item {item!r}")
    elif kind == "image":
        if set(item) != {"type", "data", "mimeType"}:
            _fail(path, n, f"bad image item {item!r}")
    elif kind == "toolRequest":
        call = item.get("toolCall")
        if role != "assistant" or not isinstance(item.get("id"), str) or not isinstance(call, dict):
            _fail(path, n, f"bad toolRequest {item!r}")
        if not set(item) <= {"type", "id", "toolCall", "thoughtSignature"} \
                or not isinstance(item.get("thoughtSignature", ""), str):
            _fail(path, n, f"bad toolRequest fields (goose's ToolRequest: id, toolCall, thoughtSignature) {item!r}")
        if call.get("status") == "success":
            value = call.get("value")
            if set(call) != {"status", "value"} or not isinstance(value, dict) \
                    or not isinstance(value.get("name"), str) or not isinstance(value.get("arguments"), dict):
                _fail(path, n, f"bad toolCall {call!r}")
        elif call.get("status") != "error" or not isinstance(call.get("error"), str):
            _fail(path, n, f"bad toolCall {call!r}")
    elif kind == "toolResponse":
        result = item.get("toolResult")
        if role != "user" or not isinstance(item.get("id"), str) or not isinstance(result, dict):
            _fail(path, n, f"tool responses must live in user messages: {item!r}")
        if result.get("status") == "success":
            if not isinstance(result.get("value"), list):
                _fail(path, n, "toolResult value must be a list")
            for mcp in result["value"]:
                _check_mcp(path, n, mcp)
        elif result.get("status") != "error" or not isinstance(result.get("error"), str):
            _fail(path, n, f"bad toolResult {result!r}")
    elif kind == "thinking":  # goose's ThinkingContent
        if set(item) != {"type", "thinking", "signature"} or role != "assistant" \
                or not all(isinstance(item[k], str) for k in ("thinking", "signature")):
            _fail(path, n, f"bad thinking item {item!r}")
    elif kind == "redactedThinking":
        if set(item) != {"type", "data"} or not isinstance(item["data"], str):
            _fail(path, n, f"bad redactedThinking item {item!r}")
    else:
        _fail(path, n, f"content type {kind!r} is not one goose reads")


def assert_goose_session(path: str | Path) -> tuple[dict, list[dict]]:
    """Check a session file line by line; returns (metadata, messages)."""
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n"), f"{path}: file does not end with a newline"
    lines = raw.split("\n")[:-1]
    meta = json.loads(lines[0])
    if list(meta)[:len(METADATA_KEYS)] != METADATA_KEYS:
        _fail(path, 1, f"metadata keys {list(meta)} are not goose's {METADATA_KEYS}")
    if not isinstance(meta["working_dir"], str) or not isinstance(meta["description"], str):
        _fail(path, 1, "working_dir and description must be strings")
    if len(meta["description"].split()) > 4:
        _fail(path, 1, f"description has more than 4 words: {meta['description']!r}")
    for key in ["message_count", *TOKEN_KEYS]:
        value = meta[key]
        if value is not None and (type(value) is not int or not 0 <= value <= I32_MAX):
            _fail(path, 1, f"{key} must be null or an integer that fits i32, got {value!r}")
    messages = []
    pending: set[str] = set()
    for n, line in enumerate(lines[1:], start=2):
        msg = json.loads(line)
        if list(msg) != ["role", "created", "content"]:
            _fail(path, n, f"message keys must be role, created, content: {list(msg)}")
        if msg["role"] not in ("user", "assistant") or type(msg["created"]) is not int:
            _fail(path, n, f"bad role or created: {msg['role']!r} {msg['created']!r}")
        if not isinstance(msg["content"], list):
            _fail(path, n, "content must be a list")
        answered = {c["id"] for c in msg["content"] if isinstance(c, dict) and c.get("type") == "toolResponse"}
        if pending and not pending <= answered:
            _fail(path, n, f"tool requests {sorted(pending - answered)} not answered in the next message")
        for item in msg["content"]:
            _check_content(path, n, msg["role"], item)
        pending = {c["id"] for c in msg["content"] if c["type"] == "toolRequest"}
        messages.append(msg)
    if meta["message_count"] != len(messages):
        _fail(path, 1, f"message_count {meta['message_count']} but {len(messages)} messages")
    return meta, messages


def goose_file(dirs: dict, session_id: str) -> Path:
    """The session's goose JSONL file: in the sessions dir, or (the PostgreSQL backend) exported from the
    database into ``<home>/exported/`` as ``goose-api`` exports it, for ``assert_goose_session`` to read."""
    url = dirs.get("database_url")
    if not url:
        return Path(dirs["sessions"]) / f"{session_id}.jsonl"
    from goose_api.postgres.db import Database
    from goose_api.postgres.sessions import PgSessionStore

    db = Database(url, min_size=0, max_size=1).open()
    try:
        store = PgSessionStore(db, None)
        body = store.file_bytes(store.load(session_id))
    finally:
        db.close()
    target = Path(dirs["home"]) / "exported" / f"{session_id}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)
    return target


def stored_session_ids(dirs: dict) -> set[str]:
    """The ids of the sessions stored (files in the sessions dir, or rows in the database)."""
    url = dirs.get("database_url")
    if not url:
        return {path.name.removesuffix(".jsonl") for path in Path(dirs["sessions"]).glob("*.jsonl")}
    import psycopg

    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM sessions")}


def session_backups(dirs: dict, session_id: str) -> list[str]:
    """The goose JSONL kept of each history a summary replaced (``.bak`` files, or rows in the database)."""
    url = dirs.get("database_url")
    if not url:
        return [path.read_text() for path in sorted(Path(dirs["sessions"]).glob(f"{session_id}.jsonl.*.bak"))]
    import psycopg

    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT jsonl FROM session_backups WHERE session_id = %s "
                                               "ORDER BY taken", (session_id,))]


def has_run_state(dirs: dict, session_id: str) -> bool:
    """Whether the server keeps run state (records, events) for the session."""
    url = dirs.get("database_url")
    if not url:
        return (Path(dirs["data"]) / "runs" / session_id).is_dir()
    import psycopg

    with psycopg.connect(url) as conn:
        return any(conn.execute(f"SELECT 1 FROM {table} WHERE session_id = %s LIMIT 1", (session_id,)).fetchone()
                   for table in ("run_records", "run_events", "run_journal"))


def journal_entries(dirs: dict, session_id: str) -> list[dict]:
    """The session's run journal, oldest first (journal.jsonl, or rows in the database)."""
    url = dirs.get("database_url")
    if not url:
        from goose_api.runs.journal import RunJournal
        from goose_api.storage.data_dir import DataDir

        return RunJournal(DataDir.at(dirs["data"], dirs["sessions"])).entries(session_id)
    import psycopg

    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT entry FROM run_journal WHERE session_id = %s ORDER BY seq",
                                               (session_id,))]


def failed_deliveries(dirs: dict) -> list[dict]:
    """The webhook deliveries given up (``webhooks/failed/``, or rows marked failed in the database)."""
    url = dirs.get("database_url")
    if not url:
        return [json.loads(path.read_text()) for path in sorted((Path(dirs["data"]) / "webhooks" / "failed")
                                                               .glob("whd_*.json"))]
    import psycopg

    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT delivery FROM webhook_deliveries WHERE failed ORDER BY id")]
