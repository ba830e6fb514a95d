"""The developer extension's confinement, as the server decides it (``developer_sandbox``).

The builtin ``developer`` server runs its ``shell`` commands in a bubblewrap
sandbox (``extensions/developer/sandbox.py``) and keeps ``text_editor`` inside
the session's working dir. This module picks the mode and tells the server
what to hide, in one JSON environment variable:

- ``auto`` (default): bubblewrap when ``bwrap`` is installed and can make its
  namespaces here; else no sandbox, with a warning at start-up.
- ``bwrap``: bubblewrap or nothing: the service does not start without it.
- ``off``: commands run unconfined as the server's user (a warning says so).

Hidden from every tool call: the settings' private paths (data dir, sessions
dir, config and ``.env`` files, the goose CLI's config dir), the server
user's home, and the ``allowed_roots`` other than the session's working dir.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import subprocess

from goose_api.errors import ConfigurationError
from goose_api.settings import Settings

log = logging.getLogger(__name__)

SANDBOX_ENV = "GOOSE_API_SANDBOX"
PROBE_TIMEOUT = 15.0
PROBE_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--share-net",
              "--die-with-parent", "--cap-drop", "ALL", "--", "true")


def probe(bwrap: str | None) -> str | None:
    """Why bubblewrap cannot sandbox here (None: it can), by making a sandbox and running ``true`` in it."""
    if bwrap is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; `make` installs it)"
    try:
        done = subprocess.run([bwrap, *PROBE_ARGS], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} could not run: {exc}"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return (f"{bwrap} cannot create its namespaces here ({reason[-1] if reason else f'exit {done.returncode}'}); "
                "unprivileged user namespaces may be off (sysctl kernel.unprivileged_userns_clone, "
                "user.max_user_namespaces, or an AppArmor/seccomp profile of the container)")
    return None


def developer_sandbox(settings: Settings) -> dict[str, object]:
    """The sandbox the developer server applies, as sent to it in ``GOOSE_API_SANDBOX``.

    Raises:
        ConfigurationError: ``developer_sandbox: bwrap`` and bubblewrap cannot sandbox here.
    """
    mode = settings.developer_sandbox
    bwrap = shutil.which("bwrap", path=settings.env.get("PATH") or os.defpath)
    problem = probe(bwrap) if mode != "off" else None
    if mode == "bwrap" and problem:
        raise ConfigurationError(f"developer_sandbox is bwrap, but {problem}")
    if mode == "off":
        log.warning("developer_sandbox is off: the developer shell runs commands as this server's user, and they "
                    "can read its keys, every session and the provider credentials")
    elif problem:
        log.warning("developer shell NOT sandboxed: %s. Its commands run as this server's user and can read its "
                    "keys and every session; install bubblewrap, or set developer_sandbox: off to accept this "
                    "(or bwrap to refuse to start without it)", problem)
        mode = "off"
    else:
        mode = "bwrap"
    return {"mode": mode, "bwrap": bwrap if mode == "bwrap" else None,
            "hide": list(settings.private_paths()), "home": settings.env.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir,
            "roots": [os.path.realpath(root) for root in settings.allowed_roots or ()]}


def sandbox_env(sandbox: dict[str, object]) -> dict[str, str]:
    """The environment entry that carries ``sandbox`` to the developer server."""
    return {SANDBOX_ENV: json.dumps(sandbox)}
