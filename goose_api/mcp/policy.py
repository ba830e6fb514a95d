"""What a stdio extension may run: the ``extension_commands`` allow-list, argument pins and runner options.

An entry is a command (``npx``) or a mapping ``{cmd, args_prefix, allow_code_options}``.
Commands are matched by the executable they resolve to, never by name: a name
is looked up in the server's own ``PATH`` (never one the caller sends in
``envs``) and compared by ``realpath``, so ``/tmp/npx`` or a ``PATH`` pointing
elsewhere never passes for ``npx``. The server then starts the absolute path it
resolved.

``args_prefix`` pins how the arguments must begin: each element equals the
argument in its place, except one ending in ``/`` (a package scope or a
directory), which any argument starting with it matches (without ``..``).

Runners that take code or packages from their arguments are parsed: their
options that run arbitrary code (``npx -c``, ``uvx --from <path>``,
``node -e``, ``python -c``, ``sh -c``, ``env cmd`` ...) and package specs that
are paths or URLs are refused unless the entry pins them in ``args_prefix`` or
says ``allow_code_options: true``. Everything after the runner's program
(package, script, module) is that program's own arguments and is not parsed.

``envs`` and ``env_keys`` may never set the search path, loader or interpreter
hooks (``ENV_DENIED``): those would run code the allow-list never saw.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from goose_api.errors import BadRequest, Forbidden

ENV_DENIED = frozenset({
    "PATH", "HOME", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "GLOBIGNORE", "IFS",
    "CDPATH", "FPATH", "ZDOTDIR", "NULLCMD", "READNULLCMD", "TMPPREFIX", "NLSPATH", "PATH_LOCALE", "LOCPATH",
    "GCONV_PATH", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS", "TERMINFO", "TERMINFO_DIRS", "TERMPATH", "TERMCAP",
    "GLIBC_TUNABLES", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
    "DOTNET_STARTUP_HOOKS", "OPENSSL_CONF", "OPENSSL_ENGINES", "OPENSSL_MODULES", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "EDITOR", "VISUAL", "PAGER", "BROWSER", "SSH_ASKPASS", "SUDO_ASKPASS",
    "LUA_INIT", "LUA_PATH", "LUA_CPATH", "PHPRC", "PHP_INI_SCAN_DIR", "TCLLIBPATH", "R_PROFILE", "R_PROFILE_USER",
    "R_LIBS", "GOFLAGS", "GOROOT", "GOPATH", "GOTOOLCHAIN", "RUSTFLAGS", "RUSTC", "RUSTC_WRAPPER",
})
ENV_DENIED_PREFIXES = (
    "LD_", "_RLD", "DYLD_", "PYTHON", "NODE_", "NPM_CONFIG_", "YARN_", "PNPM_", "BUN_", "DENO_", "UV_", "PIP_",
    "PIPX_", "POETRY_", "PERL", "RUBY", "GEM_", "BUNDLE_", "GIT_", "XDG_", "BASH_FUNC_", "KRB5", "CARGO_",
    "CORECLR_", "COR_PROFILER", "MALLOC_",
)
ENTRY_KEYS = {"cmd", "args_prefix", "allow_code_options"}

NPM_SPEC = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*(@[a-z0-9._^~<>=*|+ -]+)?$", re.I)
PY_SPEC = re.compile(r"^[a-z0-9][a-z0-9._-]*(\[[a-z0-9._,-]+\])?(\s*(===|==|>=|<=|~=|!=|>|<)\s*[a-z0-9.*+!_-]+"
                     r"(\s*,\s*(===|==|>=|<=|~=|!=|>|<)\s*[a-z0-9.*+!_-]+)*|@[a-z0-9._+-]+)?$", re.I)
PY_VERSION = re.compile(r"^((cpython|pypy|python)[-@]?)?\d+(\.\d+){0,2}$", re.I)
NPM_FLAGS = {"-y", "--yes", "--no", "-q", "--quiet", "-s", "--silent", "--prefer-offline", "--prefer-online",
             "--offline", "--no-install"}
UV_FLAGS = {"-q", "--quiet", "--offline", "--isolated", "--no-cache", "-n", "--no-progress", "--no-config"}
NODE_OPTION = re.compile(r"^--(no-warnings|no-deprecation|enable-source-maps|trace-warnings|"
                         r"max-old-space-size=\d+|stack-size=\d+|unhandled-rejections=[a-z-]+)$")
PY_FLAG_LETTERS = set("BEIOPqsSu")

# runner name -> (kind, the subcommand its package-running form needs)
PACKAGE_RUNNERS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "npx": ("npm", ((),)), "npx-cli.js": ("npm", ((),)), "pnpx": ("npm", ((),)), "bunx": ("npm", ((),)),
    "npm": ("npm", (("exec",), ("x",))), "npm-cli.js": ("npm", (("exec",), ("x",))), "pnpm": ("npm", (("dlx",),)),
    "pnpm.cjs": ("npm", (("dlx",),)), "yarn": ("npm", (("dlx",),)), "bun": ("npm", (("x",),)),
    "uvx": ("uv", ((),)), "uv": ("uv", (("tool", "run"), ("tool", "uvx"))), "pipx": ("uv", (("run",),)),
}
NODE = {"node", "nodejs"}
PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)*)?$")
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "fish", "csh", "tcsh", "perl", "ruby", "php", "lua", "tclsh",
          "deno", "pwsh"}
EXEC_WRAPPERS = {"env", "nice", "nohup", "timeout", "xargs", "sudo", "doas", "su", "busybox", "setsid", "stdbuf",
                 "time", "strace", "ltrace", "chroot", "unshare", "nsenter", "flock", "watch", "script", "ionice",
                 "taskset", "chrt", "runuser", "firejail", "bwrap", "systemd-run", "find"}

class CodeOption(Exception):
    """An argument that would run code the allow-list entry does not pin; the message names it."""


@dataclass(frozen=True)
class CommandRule:
    cmd: str                          # as configured
    executable: str | None            # its realpath, resolved with the server's PATH (None: not found)
    args_prefix: tuple[str, ...] = ()
    allow_code_options: bool = False

    def pinned(self, args: Sequence[str]) -> frozenset[int] | None:
        """The positions ``args_prefix`` pins exactly (None: the arguments do not begin as it says)."""
        if len(args) < len(self.args_prefix):
            return None
        exact = set()
        for index, (want, got) in enumerate(zip(self.args_prefix, args)):
            if want.endswith("/") and len(want) > 1:
                if not got.startswith(want) or ".." in got.split("/"):
                    return None
            elif want != got:
                return None
            else:
                exact.add(index)
        return frozenset(exact)

def parse_entries(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """The ``extension_commands`` entries as mappings.

    Raises:
        ValueError: an entry is neither a command nor a mapping of ENTRY_KEYS with the right types.
    """
    out = []
    for entry in entries:
        entry = {"cmd": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, Mapping) or not isinstance(entry.get("cmd"), str) or not entry["cmd"]:
            raise ValueError(f"an entry must be a command or a mapping with a 'cmd': {entry!r}")
        unknown = set(entry) - ENTRY_KEYS
        prefix = entry.get("args_prefix", [])
        if unknown:
            raise ValueError(f"entry {entry['cmd']!r} has unknown keys: {', '.join(sorted(unknown))}")
        if not isinstance(prefix, (list, tuple)) or not all(isinstance(a, str) for a in prefix):
            raise ValueError(f"entry {entry['cmd']!r}: args_prefix must be a list of strings")
        if not isinstance(entry.get("allow_code_options", False), bool):
            raise ValueError(f"entry {entry['cmd']!r}: allow_code_options must be true or false")
        out.append(dict(entry))
    return out


def resolve(cmd: str, search_path: str) -> str | None:
    """The absolute path ``cmd`` names: a name looked up in ``search_path``, or an absolute path as is."""
    if "/" in cmd:
        path = cmd if os.path.isabs(cmd) else None
    else:
        path = shutil.which(cmd, path=search_path)
    if path is None or not os.path.isfile(path) or not os.access(path, os.X_OK):
        return None
    return path


class LaunchPolicy:
    """The checks a stdio extension's command and environment pass before the server is started."""

    def __init__(self, entries: Iterable[Any] | None, search_path: str):
        self.search_path = search_path
        self.rules: list[CommandRule] | None = None
        if entries is not None:
            self.rules = []
            for entry in parse_entries(entries):
                found = resolve(entry["cmd"], search_path)
                self.rules.append(CommandRule(entry["cmd"], os.path.realpath(found) if found else None,
                                              tuple(entry.get("args_prefix", ())),
                                              bool(entry.get("allow_code_options", False))))

    def command(self, cmd: str, args: Sequence[str]) -> str:
        """The absolute executable to start for ``cmd args``.

        Raises:
            Forbidden: not on the allow-list, or its arguments leave what the entry allows.
            BadRequest: no such executable.
        """
        path = resolve(cmd, self.search_path)
        if path is None:
            raise BadRequest(f"Command {cmd!r} is neither an executable on the server's PATH nor the absolute path "
                             "of one (relative paths are not accepted)")
        if self.rules is None:
            return path
        real = os.path.realpath(path)
        matching = [rule for rule in self.rules if rule.executable == real]
        if not matching:
            allowed = ", ".join(rule.cmd for rule in self.rules) or "none"
            raise Forbidden(f"Command {cmd!r} ({real}) is not allowed for extensions; the allowed commands are set "
                            f"by extension_commands: {allowed}")
        problems = []
        for rule in matching:
            problem = _refusal(rule, path, args)
            if problem is None:
                return path
            problems.append(problem)
        raise Forbidden(f"Command {cmd!r} is allowed by extension_commands, but not with these arguments: "
                        f"{'; '.join(dict.fromkeys(problems))}")

    @staticmethod
    def environment(env: Mapping[str, str]) -> None:
        """Raises: Forbidden when ``env`` sets the search path, a loader or an interpreter hook."""
        denied = sorted(name for name, value in env.items() if env_denied(name) or value.startswith("() {"))
        if denied:
            raise Forbidden(f"An extension's environment may not set {', '.join(denied)}: the search path, loader "
                            "and interpreter hooks would run code the extension_commands allow-list never checked")


def env_denied(name: str) -> bool:
    upper = name.upper()
    return upper in ENV_DENIED or upper.startswith(ENV_DENIED_PREFIXES)


def _refusal(rule: CommandRule, path: str, args: Sequence[str]) -> str | None:
    """Why ``rule`` does not allow ``args`` (None: it does)."""
    pinned = rule.pinned(args)
    if pinned is None:
        return f"the arguments must begin with {list(rule.args_prefix)}"
    if rule.allow_code_options:
        return None
    try:
        _check_runner(_names(path), list(args), lambda index: index not in pinned)
    except CodeOption as exc:
        return f"{exc} (pin it in the entry's args_prefix, or set allow_code_options: true)"
    return None


def _names(path: str) -> list[str]:
    """The names a runner is known by: the executable's, and that of the file it links to."""
    return list(dict.fromkeys((os.path.basename(path), os.path.basename(os.path.realpath(path)))))


def _check_runner(names: list[str], args: list[str], free: Callable[[int], bool]) -> None:
    """Raises: CodeOption for an argument not pinned (``free``) that runs code of the caller's choosing."""
    for name in names:
        if name in PACKAGE_RUNNERS:
            kind, subcommands = PACKAGE_RUNNERS[name]
            start = next((len(sub) for sub in subcommands if tuple(args[:len(sub)]) == sub), None)
            if start is None:
                raise CodeOption(f"{name} may only run a package here ({' or '.join(' '.join(s) for s in subcommands)})")
            return _check_package_runner(kind, args, start, free)
        if name in NODE:
            return _check_options(args, free, lambda a: bool(NODE_OPTION.match(a)), name)
        if PYTHON.match(name):
            return _check_options(args, free, _python_flag, name)
        if name in SHELLS:
            return _check_options(args, free, lambda a: False, name)
        if name in EXEC_WRAPPERS:
            extra = [arg for index, arg in enumerate(args) if free(index)]
            if extra:
                raise CodeOption(f"{name} runs other commands: {extra[0]!r} is not pinned")
            return None
    return None


def _python_flag(arg: str) -> bool:
    """Interpreter flags that run nothing: -B -E -I -O -P -q -s -S -u (also grouped) and -X options."""
    if arg.startswith("-X"):
        return True
    return len(arg) > 1 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= PY_FLAG_LETTERS


def _check_options(args: list[str], free: Callable[[int], bool], safe: Callable[[str], bool], what: str) -> None:
    """An interpreter's options up to its script (the rest is the script's): each must be pinned or safe."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--" or arg == "-" or not arg.startswith("-"):
            return
        if free(index) and not safe(arg):
            raise CodeOption(f"{arg!r} is not an option of {what} known to run no code of its own")
        index += 2 if arg == "-X" else 1


def _check_package_runner(kind: str, args: list[str], start: int, free: Callable[[int], bool]) -> None:
    """npx-like and uvx-like runners: safe flags, registry packages only, up to the package to run."""
    spec, flags, value_options = (NPM_SPEC, NPM_FLAGS, {"-p", "--package"}) if kind == "npm" else (
        PY_SPEC, UV_FLAGS, {"--from", "--with", "--python", "-p", "--spec"})
    index = start
    while index < len(args) and args[index].startswith("-"):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        name, has_value, value = arg.partition("=")
        if name in value_options:
            if not has_value:
                index += 1
                value = args[index] if index < len(args) else ""
            if free(index):
                _check_value(kind, name, value)
        elif free(index) and arg not in flags:
            raise CodeOption(f"{arg!r} is not an option of this runner known to run no code of its own")
        index += 1
    if index < len(args) and free(index) and not spec.match(args[index]):
        raise CodeOption(f"{args[index]!r} is not a package from the registry (a path, URL or git spec runs code "
                         "from anywhere)")


def _check_value(kind: str, option: str, value: str) -> None:
    if option == "--python" or (kind == "uv" and option == "-p"):
        ok = bool(PY_VERSION.match(value))
    elif kind == "npm":
        ok = bool(NPM_SPEC.match(value))
    else:
        ok = all(PY_SPEC.match(part.strip()) for part in value.split(","))
    if not ok:
        raise CodeOption(f"{option} {value!r} is not a package from the registry (or a Python version)")
