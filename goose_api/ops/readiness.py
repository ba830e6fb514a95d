"""``GET /ready``: can this worker serve a turn right now, and if not, why not.

Liveness (``/health``) only says the process answers. Readiness checks what a
turn needs: a provider whose settings are complete (the missing variables are
named), extensions that started, and data and sessions dirs this process can
write to. Reasons name settings, never paths or secret values.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from goose_api.errors import NotReady

OUTAGES = ("redis", "database")  # services that come back by themselves: the answer says when to look again
OUTAGE_RETRY_AFTER = "5"


def provider_check(services: Any) -> dict[str, Any]:
    name, model = services.providers.current()
    check = {"name": "provider", "provider": name, "model": model, "ok": True}
    problem = services.providers.problem()  # missing credentials (named), unknown name, no model file
    if problem:
        return {**check, "ok": False, "reason": f"provider {name} is not configured: {problem}"}
    return check


def extensions_check(services: Any) -> dict[str, Any]:
    details = services.registry.details()
    states = {ext["name"]: ext["status"] for ext in details}
    failed = [ext for ext in details if ext["status"] != "running"]
    check = {"name": "extensions", "ok": not failed, "extensions": states}
    if failed:
        check["reason"] = "; ".join(f"extension {ext['name']} is not running: {ext.get('last_error') or 'stopped'}"
                                    for ext in failed)
    return check


def redis_check(services: Any) -> dict[str, Any]:
    """With ``REDIS_URL``: the turn queue, the session leases and the event wake-ups need Redis."""
    problem = services.redis.problem()
    check = {"name": "redis", "ok": problem is None}
    if problem:
        check["reason"] = f"{problem}; turns cannot be queued until it is back"
    return check


def writable_check(name: str, setting: str, path: Path) -> dict[str, Any]:
    """Create and remove a file there: permissions, a read-only mount and a full disk all show up."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".ready-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = f"the {name} is not writable ({exc.strerror or type(exc).__name__}); check {setting}"
        return {"name": name.replace(" ", "_"), "ok": False, "reason": reason}
    return {"name": name.replace(" ", "_"), "ok": True}


def storage_check(services: Any) -> dict[str, Any]:
    """Where the sessions are kept: the sessions dir is writable, or the database answers."""
    if services.stores.backend == "files":
        return writable_check("sessions dir", "sessions_dir", services.data.sessions)
    problem = services.stores.problem()
    return {"name": "database", "ok": problem is None, **({"reason": problem} if problem else {})}


def readiness(services: Any) -> list[dict[str, Any]]:
    """Every check, when all pass.

    Raises:
        NotReady: one or more checks failed; the message lists every reason.
    """
    storage = storage_check(services)  # first: the other checks read the backend's state
    checks = [provider_check(services), *([extensions_check(services)] if storage["ok"] else []),
              writable_check("data dir", "data_dir", services.data.root), storage]
    if services.redis is not None:
        checks.append(redis_check(services))
    reasons = [check["reason"] for check in checks if not check["ok"]]
    if reasons:
        outage = any(not check["ok"] for check in checks if check["name"] in OUTAGES)
        raise NotReady("Not ready: " + "; ".join(reasons), details={"checks": checks},
                       headers={"Retry-After": OUTAGE_RETRY_AFTER} if outage else None)
    return checks
