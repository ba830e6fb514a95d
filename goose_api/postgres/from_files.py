"""``goose-api migrate --from-files DATA_DIR SESSIONS_DIR``: a file installation into the database.

Moved: every goose session file (its metadata, messages and times) with its
owner, the tools always allowed, the provider switched to, the extensions
added at run time, the generated webhook secret and the webhook deliveries
still waiting. Not moved: run records, event logs and journals (the history of
turns already finished is in the sessions; a run still going on a file server
is not one the database's servers could own), idempotency keys (they expire in
a day) and failed-auth counts.

Idempotent: a session already in the database is left as it is (reported as
skipped), and so is every other value already there, so running it twice (or
after a partial run) moves only what is missing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from goose_api.errors import ApiError
from goose_api.postgres.db import Database, jsonb
from goose_api.postgres.shared import DEFAULT_KEY
from goose_api.sessions.owners import SessionOwners
from goose_api.sessions.store import SessionStore
from goose_api.storage.data_dir import DataDir

log = logging.getLogger(__name__)


@dataclass
class Moved:
    sessions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"sessions moved: {len(self.sessions)}", f"sessions already in the database: {len(self.skipped)}"]
        if self.unreadable:
            lines.append(f"sessions not moved (unreadable): {', '.join(self.unreadable)}")
        lines.append(f"other state moved: {', '.join(self.other) or 'none'}")
        return "\n".join(lines)


def move(db: Database, data_dir: Path, sessions_dir: Path) -> Moved:
    """Copy a file installation's state into the (migrated) database; returns what was done."""
    data = DataDir.at(data_dir, sessions_dir)
    files = SessionStore(data)
    owners = SessionOwners(data.owners, data.owners_legacy).current()
    moved = Moved()
    for session_id, modified in sorted(files.list_ids()):
        try:
            session = files.load(session_id)
        except ApiError as exc:
            log.warning("session not moved id=%s: %s", session_id, exc)
            moved.unreadable.append(session_id)
            continue
        created = float(session.messages[0].created) if session.messages else modified
        with db.transaction(durable=True) as conn:
            inserted = conn.execute(
                "INSERT INTO sessions (id, metadata, created, updated) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (session_id, jsonb({**session.metadata, "message_count": len(session.messages)}), created,
                 modified)).rowcount
            if not inserted:
                moved.skipped.append(session_id)
                continue
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO messages (session_id, position, message) VALUES (%s, %s, %s)",
                                [(session_id, n, jsonb(m.to_json())) for n, m in enumerate(session.messages)])
            if owners.get(session_id):
                conn.execute("INSERT INTO session_owners (session_id, owner) VALUES (%s, %s) "
                             "ON CONFLICT (session_id) DO NOTHING", (session_id, owners[session_id]))
        moved.sessions.append(session_id)
    _move_small_state(db, data, moved)
    return moved


def _move_small_state(db: Database, data: DataDir, moved: Moved) -> None:
    permissions = _json(data.permissions) or {}
    chosen = [(DEFAULT_KEY, t) for t in permissions.get("always_allow", []) if isinstance(t, str)]  # one list
    keys = permissions.get("keys") if isinstance(permissions.get("keys"), dict) else {}  # per key
    chosen += [(str(key), t) for key, tools in keys.items() if isinstance(tools, list) for t in tools
               if isinstance(t, str)]
    allowed = sum(db.execute("INSERT INTO tool_permissions (client, tool) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                             (key, tool), durable=True) for key, tool in chosen)
    if allowed:
        moved.other.append(f"{allowed} tools always allowed")
    for name, value in (("provider", _json(data.provider)), ("extensions", _json(data.extensions))):
        if isinstance(value, dict) and db.execute(
                "INSERT INTO kv (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", (name, jsonb(value)),
                durable=True):
            moved.other.append(f"the {name} choice" if name == "provider" else "the extensions")
    try:
        secret = data.webhook_secret.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if secret and db.execute("INSERT INTO kv (name, value) VALUES ('webhook_secret', %s) ON CONFLICT DO NOTHING",
                             (jsonb(secret),), durable=True):
        moved.other.append("the webhook secret")
    waiting = 0
    for path in data.webhook_deliveries():
        delivery = _json(path)
        if isinstance(delivery, dict) and "id" in delivery:
            waiting += db.execute("INSERT INTO webhook_deliveries (id, delivery, next_at) VALUES (%s, %s, %s) "
                                  "ON CONFLICT (id) DO NOTHING",
                                  (delivery["id"], jsonb(delivery), float(delivery.get("next_at") or 0)),
                                  durable=True)
    if waiting:
        moved.other.append(f"{waiting} webhook deliveries")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
