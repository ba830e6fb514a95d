"""Where a shell command runs: a bubblewrap sandbox, or (mode ``off``) as this process's user.

goose-api sends the policy in ``GOOSE_API_SANDBOX`` (see ``goose_api/mcp/sandbox.py``):
``{"mode": "bwrap" | "off", "bwrap": path, "hide": [...], "home": path, "roots": [...]}``.
Run by hand, without it, commands are not sandboxed.

In the sandbox the whole file system is read-only; only the working dir is
writable. The server user's home, the ``allowed_roots`` (but the working dir)
and ``/tmp``, ``/var/tmp``, ``/run`` are empty (fresh tmpfs, thrown away with
the command), and the hidden paths (data dir, sessions dir, config and key
files) are covered, even inside the working dir. The command gets its own
user, pid, IPC, UTS and cgroup namespaces (it sees only its own processes, so
not this server's environment), no capabilities, a new session (no terminal
injection) and a clean environment. The network is shared. When the command
ends, or this server dies, everything it started ends with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_ENV = "GOOSE_API_SANDBOX"
EMPTY_DIRS = ("/tmp", "/var/tmp", "/run")
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME")


@dataclass(frozen=True)
class Sandbox:
    managed: bool = False             # goose-api started us with a policy (then a working dir is required)
    mode: str = "off"
    bwrap: str | None = None
    hide: tuple[str, ...] = ()
    home: str | None = None
    roots: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> "Sandbox":
        """The policy goose-api sent; a malformed one confines as much as it can (bwrap, hide what it names)."""
        raw = environ.get(SANDBOX_ENV)
        if not raw:
            return cls(environ=environ)
        data = json.loads(raw)
        return cls(managed=True, mode=str(data.get("mode", "bwrap")), bwrap=data.get("bwrap"),
                   hide=tuple(os.path.realpath(p) for p in data.get("hide", ())), home=data.get("home"),
                   roots=tuple(data.get("roots", ())), environ=environ)

    def hidden(self, path: str) -> bool:
        """Whether ``path`` (a real path) is or is inside a hidden path."""
        return any(path == hidden or path.startswith(hidden.rstrip("/") + "/") for hidden in self.hide)

    def process_env(self) -> dict[str, str] | None:
        """The environment to start ``argv`` with: none for bwrap (its own, visible in the sandbox, stays empty)."""
        return {} if self.mode == "bwrap" else None

    def argv(self, shell: str, command: str, cwd: Path) -> list[str]:
        """How to run ``shell -c command`` in ``cwd`` under this policy."""
        if self.mode != "bwrap":
            return [shell, "-c", command]
        if not self.bwrap:
            raise RuntimeError("the sandbox is required but bwrap is not available")
        work = os.path.realpath(cwd)
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--share-net", "--cap-drop", "ALL",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for empty in (*EMPTY_DIRS, self.home, *self.roots):
            if empty and empty != "/" and os.path.isdir(empty):
                args += ["--tmpfs", empty]
        args += _resolver_binds()
        args += ["--bind", work, work]
        for path in self.hide:
            if os.path.isdir(path):
                args += ["--tmpfs", path]
            elif os.path.exists(path):
                args += ["--ro-bind", "/dev/null", path]
        args += ["--chdir", work, "--clearenv", "--setenv", "HOME", self.home or work, "--setenv", "TERM", "dumb"]
        for name in KEPT_ENV:
            if name in self.environ:
                args += ["--setenv", name, self.environ[name]]
        return [*args, "--", shell, "-c", command]


def _resolver_binds() -> list[str]:
    """``/etc/resolv.conf`` often links into ``/run``, which the sandbox empties: bind its target back."""
    target = os.path.realpath("/etc/resolv.conf")
    if target.startswith("/run/") and os.path.isfile(target):
        return ["--ro-bind", target, target]
    return []
