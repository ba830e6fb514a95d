"""From a goose ExtensionConfig to a way of reaching the server, with the policy checks.

Builtin extensions are started exactly like a user's stdio extension:
``<this python> -m extensions.<name>`` with the project root as working
directory and the data dir in ``GOOSE_API_DATA_DIR``. ``env_keys`` are copied
from the service's environment (``settings.env``) and must all be present;
``settings.extension_commands``, when set, lists the only commands a stdio
extension may run, with the arguments they may take (``policy.py``); ``envs``
never set loader or interpreter hooks. URL extensions reach public addresses
and those ``settings.extension_hosts`` allows (``hosts.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from marshmallow import ValidationError

from goose_api.errors import BadRequest, ConfigurationError
from goose_api.mcp.client import ServerSpec
from goose_api.mcp.config import DEFAULT_TIMEOUT, VARIANTS, load_extension_config
from goose_api.mcp.hosts import HostPolicy
from goose_api.mcp.policy import LaunchPolicy
from goose_api.mcp.sandbox import developer_sandbox, sandbox_env
from goose_api.settings import Settings

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILTINS_DIR = PROJECT_ROOT / "extensions"
DATA_DIR_ENV = "GOOSE_API_DATA_DIR"
DEFAULT_EXTENSIONS = {"developer": {"enabled": True, "type": "builtin", "name": "developer",
                                    "timeout": DEFAULT_TIMEOUT}}


def extension_key(name: str) -> str:
    """goose's key for an extension name: lowercase, anything outside [A-Za-z0-9_-] becomes ``_``."""
    return re.sub(r"[^a-z0-9_-]", "_", name.lower())


def builtin_names() -> list[str]:
    """The builtin servers shipped in ``extensions/`` (a package with a ``__main__``)."""
    return sorted(p.parent.name for p in BUILTINS_DIR.glob("*/__main__.py"))


class Launcher:
    """How to start or reach each extension, under the service's launch policy."""

    def __init__(self, settings: Settings):
        self.settings = settings
        try:
            self.commands = LaunchPolicy(settings.extension_commands, settings.env.get("PATH") or os.defpath)
        except ValueError as exc:
            raise ConfigurationError(f"extension_commands: {exc}") from None
        for rule in self.commands.rules or []:
            if rule.executable is None:
                log.warning("extension_commands: %r is not an executable on the server's PATH; it allows nothing",
                            rule.cmd)
        self.hosts = HostPolicy(settings.extension_hosts)
        self.sandbox = developer_sandbox(settings)

    def spec(self, config: Mapping[str, Any]) -> ServerSpec:
        """How to start or reach the server ``config`` describes.

        Raises:
            BadRequest: an ``env_keys`` variable is missing, or no such builtin exists.
            Forbidden: a stdio command or its arguments outside ``extension_commands``, an ``envs`` name
                that sets a loader or interpreter hook, a URL whose host is not a public address (nor
                allowed by ``extension_hosts``).
        """
        kind = config["type"]
        if kind == "builtin":
            spec = _builtin_spec(config, self.settings)
            if extension_key(config["name"]) == "developer":
                for path in (self.settings.data_dir, self.settings.sessions_dir):
                    try:  # hidden only if it exists before the sandbox does
                        os.makedirs(path, exist_ok=True)
                    except OSError:
                        pass  # a file in the way (hidden as a file) or unwritable: readiness reports it
                return dataclasses.replace(spec, env={**spec.env, **sandbox_env(self.sandbox)})
            return spec
        env = {**config.get("envs", {}), **_env_from_keys(config.get("env_keys", []), self.settings)}
        if kind == "stdio":
            args = tuple(config.get("args", []))
            command = self.commands.command(config["cmd"], args)
            self.commands.environment(env)
            return ServerSpec("stdio", command=command, args=args, env=env)
        self.hosts.check_url(config["uri"])
        return ServerSpec(kind, url=config["uri"], headers=dict(config.get("headers", {})), hosts=self.hosts)


def _builtin_spec(config: Mapping[str, Any], settings: Settings) -> ServerSpec:
    module = extension_key(config["name"])
    if module not in builtin_names():
        raise BadRequest(f"There is no builtin extension {config['name']!r}; "
                         f"the builtins are: {', '.join(builtin_names())}")
    return ServerSpec("stdio", command=sys.executable, args=("-m", f"extensions.{module}"),
                      env={DATA_DIR_ENV: str(settings.data_dir)}, cwd=str(PROJECT_ROOT))


def _env_from_keys(keys: list[str], settings: Settings) -> dict[str, str]:
    missing = [key for key in keys if key not in settings.env]
    if missing:
        raise BadRequest(f"The extension needs environment variables that are not set: {', '.join(missing)}; "
                         "set them in the service's environment or .env")
    return {key: settings.env[key] for key in keys}


def configured_extensions(settings: Settings) -> dict[str, dict[str, Any]]:
    """The enabled extensions of the settings' goose-style ``extensions`` map, validated.

    ``developer`` is enabled unless the map disables it, as in goose. goose-only
    keys (``enabled``, ``available_tools``, ...) are dropped; an invalid entry is
    skipped with a warning rather than stopping the service.
    """
    entries = {**DEFAULT_EXTENSIONS, **settings.extensions}
    out: dict[str, dict[str, Any]] = {}
    for key, entry in entries.items():
        if not isinstance(entry, Mapping) or not entry.get("enabled", True):
            continue
        variant = VARIANTS.get(entry.get("type"))  # type: ignore[arg-type]
        if variant is None:
            log.warning("extension %s in the configuration has unsupported type %r; skipped", key, entry.get("type"))
            continue
        known = {k: v for k, v in {"name": key, **entry}.items() if k in variant().fields and v is not None}
        try:
            config = load_extension_config(known)
        except ValidationError as exc:
            log.warning("extension %s in the configuration is invalid (%s); skipped", key, exc.messages)
            continue
        out[extension_key(config["name"])] = compact(config)
    return out


def compact(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without empty optional fields, as stored and compared."""
    return {k: v for k, v in config.items() if v not in (None, [], {})}
