"""Settings: one frozen object, built once and passed down.

Precedence, high to low: ``GOOSE_API_*`` environment variables (``GOOSE_API_KEY``
is the API key), ``.env``, the config file (``GOOSE_API_CONFIG``, else
``./config.yaml``, else ``./config.{yml,json,toml}``), the goose CLI's own
``~/.config/goose/config.yaml`` (provider, model, mode, extensions), defaults.
This is the only module that reads the process environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml
from dotenv import dotenv_values

from goose_api.errors import ConfigurationError

ENV_PREFIX = "GOOSE_API_"
CONFIG_CANDIDATES = ("config.yaml", "config.yml", "config.json", "config.toml", "config")
GOOSE_CLI_KEYS = {  # goose CLI config / environment name -> our setting
    "GOOSE_PROVIDER": "provider",
    "GOOSE_MODEL": "model",
    "GOOSE_MODE": "mode",
    "GOOSE_CONTEXT_STRATEGY": "context_strategy",
}


def _xdg(environ: Mapping[str, str], var: str, fallback: str) -> Path:
    base = environ.get(var) or str(Path(environ.get("HOME") or Path.home()) / fallback)
    return Path(base)


@dataclass(frozen=True)
class Settings:
    # serving
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 1024                        # per worker; a ceiling: made on demand, ended when idle
    long_request_limit: int | None = None      # streams + blocking waits per worker (None: 3/4 of threads)
    long_request_key_limit: int | None = None  # the same per API key (None: half of threads)
    graceful_timeout: int = 30
    control_socket: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    # auth
    api_key: str | None = None
    api_keys: tuple[Mapping[str, Any], ...] = ()
    # storage
    data_dir: str = ""
    sessions_dir: str = ""
    database_url: str | None = None            # postgres://...: keep the state in PostgreSQL (DATABASE_URL)
    # provider
    provider: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    provider_retries: int = 3
    provider_retry_max_wait: float = 30.0
    context_limit: int | None = None
    context_strategy: str = "summarize"
    local_model_path: str | None = None
    reasoning_models: tuple[str, ...] = ()  # globs of model names sent as OpenAI reasoning models
    model_capabilities: Mapping[str, Any] = field(default_factory=dict)  # glob -> {images, context_limit}
    # agent
    working_dir: str | None = None
    max_turns: int = 50
    mode: str = "auto"
    run_threads: int = 1024                  # turns running at once per worker (a ceiling, like threads)
    # runs (shared through the data dir by every worker)
    run_poll_interval: float = 0.1
    run_heartbeat_interval: float = 5.0
    run_lease_timeout: float = 30.0
    sse_heartbeat: float = 15.0
    # turns in worker processes (REDIS_URL): Dramatiq on Redis
    redis_url: str | None = None
    worker_threads: int = 128                # turns one `goose-api worker` process runs at once
    worker_queue: str = "goose-turns"        # the Dramatiq queue turns wait in
    worker_metrics_port: int | None = None   # a worker serves GET /metrics (Prometheus) on this port
    # durable runs (journal, resume, idempotency, webhooks)
    resume_started_tools: str = "interrupt"
    auto_resume: bool = False
    idempotency_ttl: float = 86400.0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_retries: int = 8
    webhook_retry_wait: float = 2.0
    webhook_timeout: float = 10.0
    # extensions
    extensions: Mapping[str, Any] = field(default_factory=dict)
    extension_commands: tuple[Any, ...] | None = None   # commands, or {cmd, args_prefix, allow_code_options}
    extension_hosts: tuple[str, ...] = ()
    max_extension_timeout: float = 3600.0   # the longest start or tool call an extension may be given
    # limits: what one key (or one file) may make the server hold
    max_queued_turns: int = 16              # turns waiting per session (if_busy: enqueue / interrupt)
    approval_timeout: float = 3600.0        # a tool call waiting this long for POST /confirm is denied
    max_tool_output_chars: int = 200_000    # tool output kept in the session per result (goose's threshold)
    import_max_bytes: int = 32 * 1024 * 1024  # a session sent to POST /sessions/import (JSONL text, JSON, sessions.db)
    import_max_messages: int = 100_000      # messages in one imported session (JSONL: its lines after the first)
    # operations
    log_level: str = "INFO"
    log_format: str = "text"
    allowed_roots: tuple[str, ...] | None = None
    developer_sandbox: str = "auto"
    cors_origins: tuple[str, ...] = ()
    auth_failure_limit: int = 10
    auth_failure_window: float = 60.0
    # where values came from, the files read, and the environment providers and extensions may read
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    files: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def private_paths(self) -> tuple[str, ...]:
        """What a tool must never see: the data dir (keys, every run), the sessions dir, the files settings
        came from (keys, provider credentials) and the goose CLI's config dir (its secrets live there)."""
        goose_config = _xdg(self.env, "XDG_CONFIG_HOME", ".config") / "goose"
        paths = [self.data_dir, self.sessions_dir, *self.files, str(goose_config)]
        return tuple(dict.fromkeys(str(Path(p)) for p in paths if p))

    @property
    def long_request_limits(self) -> tuple[int, int]:
        """(per worker, per key) ceilings on long-lived requests; what is left of ``threads`` serves short ones."""
        total = self.long_request_limit
        if total is None:
            total = self.threads - max(1, self.threads // 4)
        per_key = max(1, self.threads // 2) if self.long_request_key_limit is None else self.long_request_key_limit
        return total, min(per_key, total)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None,
             cwd: str | Path | None = None) -> "Settings":
        """Build settings from the environment, ``.env`` and config files.

        Raises:
            ConfigurationError: a config file cannot be read or a value has the wrong type.
        """
        environ = dict(os.environ if environ is None else environ)
        cwd = Path(cwd or os.getcwd())
        dotenv = {k: v for k, v in dotenv_values(cwd / ".env").items() if v is not None}
        env = {**dotenv, **environ}  # the real environment wins over .env
        files: list[str] = []
        layers: list[tuple[str, dict[str, Any]]] = [
            ("goose config", _goose_cli_layer(env, files)),
            ("goose environment", {GOOSE_CLI_KEYS[k]: env[k] for k in GOOSE_CLI_KEYS if k in env}),
            ("config file", _config_file_layer(env, cwd, files)),
            (".env", _prefixed(dotenv)),
            ("environment", _prefixed(environ)),
            ("overrides", dict(overrides or {})),
        ]
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        known = {f.name: f for f in fields(cls) if f.name not in ("env", "sources", "files")}
        for source, layer in layers:
            for key, raw in layer.items():
                if key not in known:
                    if source in ("config file", "overrides"):
                        raise ConfigurationError(f"Unknown setting {key!r} in {source}")
                    continue
                values[key] = _coerce(known[key], raw, source)
                sources[key] = source
        values.setdefault("data_dir", str(_xdg(env, "XDG_DATA_HOME", ".local/share") / "goose-api"))
        values.setdefault("sessions_dir", str(_xdg(env, "XDG_DATA_HOME", ".local/share") / "goose" / "sessions"))
        if environ.get("DATABASE_URL") and "database_url" not in _prefixed(environ):  # Procfile hosts' add-on
            values["database_url"] = environ["DATABASE_URL"]
            sources["database_url"] = "DATABASE_URL"
        if env.get("REDIS_URL") and sources.get("redis_url") not in ("environment", ".env"):
            values["redis_url"], sources["redis_url"] = env["REDIS_URL"], "REDIS_URL"  # the Redis add-on's variable
        if "PORT" in environ:  # Procfile hosts: listen on every interface at $PORT
            values["port"] = _coerce(known["port"], environ["PORT"], "PORT")
            values["host"] = "0.0.0.0"
            sources.update(port="PORT", host="PORT")
        if (cwd / ".env").is_file():
            files.append(str((cwd / ".env").resolve()))
        settings = cls(**values, env=MappingProxyType(env), sources=MappingProxyType(sources), files=tuple(files))
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.context_strategy not in ("summarize", "truncate"):
            raise ConfigurationError("context_strategy must be 'summarize' or 'truncate'")
        if self.mode not in ("auto", "approve", "smart_approve", "chat"):
            raise ConfigurationError("mode must be one of auto, approve, smart_approve, chat")
        if self.developer_sandbox not in ("auto", "bwrap", "off"):
            raise ConfigurationError("developer_sandbox must be auto, bwrap or off")
        if self.log_format not in ("text", "json"):
            raise ConfigurationError("log_format must be 'text' or 'json'")
        if self.auth_failure_limit < 1 or self.auth_failure_window <= 0:
            raise ConfigurationError("auth_failure_limit must be at least 1 and auth_failure_window positive")
        if self.max_turns < 1 or self.threads < 1 or self.workers < 1 or self.run_threads < 1:
            raise ConfigurationError("max_turns, threads, workers and run_threads must be at least 1")
        total, per_key = self.long_request_limits
        if not 1 <= total < self.threads or per_key < 1:
            raise ConfigurationError("long_request_limit and long_request_key_limit must be at least 1, and "
                                     "long_request_limit less than threads: the threads above it answer short "
                                     "requests (/health, GET /session/<id>) while streams and waits hold the rest")
        if min(self.run_poll_interval, self.run_heartbeat_interval, self.sse_heartbeat) <= 0:
            raise ConfigurationError("run_poll_interval, run_heartbeat_interval and sse_heartbeat must be positive")
        if self.run_lease_timeout <= 2 * self.run_heartbeat_interval:
            raise ConfigurationError("run_lease_timeout must be more than twice run_heartbeat_interval, "
                                     "or a live run could look abandoned")
        self._validate_queue()
        if self.resume_started_tools not in ("interrupt", "ask"):
            raise ConfigurationError("resume_started_tools must be 'interrupt' or 'ask'")
        if self.idempotency_ttl <= 0 or self.webhook_retries < 0 or self.webhook_retry_wait <= 0 \
                or self.webhook_timeout <= 0:
            raise ConfigurationError("idempotency_ttl, webhook_retry_wait and webhook_timeout must be positive, "
                                     "webhook_retries at least 0")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigurationError("webhook_url must be an http:// or https:// URL")
        if min(self.max_queued_turns, self.max_tool_output_chars, self.import_max_bytes,
               self.import_max_messages) < 1 or min(self.approval_timeout, self.max_extension_timeout) <= 0:
            raise ConfigurationError("max_queued_turns, max_tool_output_chars, import_max_bytes and "
                                     "import_max_messages must be at least 1, approval_timeout and "
                                     "max_extension_timeout positive")
        _check_api_keys(self.api_keys, self.api_key)
        if self.database_url and not self.database_url.startswith(("postgres://", "postgresql://")):
            raise ConfigurationError("DATABASE_URL (database_url) must be a postgres:// or postgresql:// URL")
        self._validate_model_capabilities()

    def _validate_queue(self) -> None:
        if self.worker_threads < 1:
            raise ConfigurationError("worker_threads must be at least 1")
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError("REDIS_URL must be a redis://, rediss:// or unix:// URL "
                                     "(the Redis add-on sets it; unset it to run turns in the web processes)")
        if self.redis_url and not self.database_url:
            raise ConfigurationError("REDIS_URL is set but DATABASE_URL is not: worker processes run the turns and "
                                     "must see the same sessions and runs as the web processes, which files on "
                                     "one host's disk cannot give. Set DATABASE_URL (postgresql://...) as well, "
                                     "or unset REDIS_URL to run turns in the web processes")

    def _validate_model_capabilities(self) -> None:
        for pattern, values in self.model_capabilities.items():
            if not isinstance(values, Mapping) or set(values) - {"images", "context_limit"}:
                raise ConfigurationError(f"model_capabilities[{pattern!r}] must be a mapping with 'images' "
                                         "(true or false) and/or 'context_limit' (tokens)")
            if not isinstance(values.get("images", False), bool):
                raise ConfigurationError(f"model_capabilities[{pattern!r}].images must be true or false")
            limit = values.get("context_limit", 1)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigurationError(f"model_capabilities[{pattern!r}].context_limit must be a positive integer")


def _check_api_keys(entries: tuple[Any, ...], api_key: str | None) -> None:
    """Each entry has a name and a key, both unique (``api_key`` is named ``default``); ``admin`` is a boolean.

    A name is who owns sessions: a second key of the same name would own the first one's.
    ``admin: "false"`` (a string) would have made an admin.
    """
    names, keys = ({"default"}, {api_key}) if api_key else (set(), set())
    for entry in entries:
        if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("key"):
            raise ConfigurationError("each api_keys entry needs a 'name' and a 'key'")
        name, key = str(entry["name"]), str(entry["key"])
        if any(ord(char) < 32 or ord(char) == 127 for char in name) or len(name) > 128:
            raise ConfigurationError(f"api_keys name {name!r} must be at most 128 characters, none of them "
                                     "control characters")
        if "webhook_secret" in entry and not (isinstance(entry["webhook_secret"], str) and entry["webhook_secret"]):
            raise ConfigurationError(f"api_keys entry {name!r}: webhook_secret must be a non-empty string (or left "
                                     "out: then it is derived from the server's)")
        if "admin" in entry and not isinstance(entry["admin"], bool):
            raise ConfigurationError(f"api_keys entry {name!r}: admin must be true or false (a boolean, "
                                     f"not the {type(entry['admin']).__name__} {entry['admin']!r})")
        if name in names:
            raise ConfigurationError(f"api_keys: the name {name!r} is given to two keys; names must be unique"
                                     + (" (the api_key setting's key is named 'default')"
                                        if name == "default" and api_key else ""))
        if key in keys:
            raise ConfigurationError(f"api_keys entry {name!r}: its key is another entry's (or api_key's); "
                                     "keys must be unique")
        names.add(name)
        keys.add(key)


def _prefixed(source: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in source.items():
        if key == "GOOSE_API_KEY":
            out["api_key"] = value
        elif key.startswith(ENV_PREFIX) and key != "GOOSE_API_CONFIG":
            out[key[len(ENV_PREFIX):].lower()] = value
    return out


def _read_structured(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)  # YAML is a superset of JSON; bare `config` lands here
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"Cannot read config file {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"Config file {path} must hold a mapping of settings")
    return data


def _config_file_layer(env: Mapping[str, str], cwd: Path, files: list[str]) -> dict[str, Any]:
    explicit = env.get("GOOSE_API_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"GOOSE_API_CONFIG points to {path}, which is not a file")
        files.append(str(path.resolve()))
        return _read_structured(path)
    for name in CONFIG_CANDIDATES:
        if (cwd / name).is_file():
            files.append(str((cwd / name).resolve()))
            return _read_structured(cwd / name)
    return {}


def _goose_cli_layer(env: Mapping[str, str], files: list[str]) -> dict[str, Any]:
    """Provider, model, mode and extensions from the goose CLI's config (read only, never written)."""
    path = _xdg(env, "XDG_CONFIG_HOME", ".config") / "goose" / "config.yaml"
    if not path.is_file():
        return {}
    files.append(str(path.resolve()))
    try:
        data = _read_structured(path)
    except ConfigurationError:
        return {}  # a broken goose CLI config is the CLI's business, not a reason not to start
    out = {GOOSE_CLI_KEYS[k]: data[k] for k in GOOSE_CLI_KEYS if k in data}
    if isinstance(data.get("extensions"), dict):
        out["extensions"] = data["extensions"]
    return out


def _coerce(spec: dataclasses.Field, raw: Any, source: str) -> Any:
    """Turn a raw value (a string from the environment, or parsed YAML) into the field's type."""
    type_text = str(spec.type)
    if isinstance(raw, str) and not type_text.startswith("str"):
        if raw.strip() == "" and "None" in type_text:
            return None
        try:
            raw = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"Setting {spec.name} from {source}: {exc}") from exc
    if raw is None:
        return None
    try:
        if type_text.startswith("int") and not isinstance(raw, bool):
            return int(raw)
        if type_text.startswith("float"):
            return float(raw)
        if type_text.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            raise TypeError("expected true or false")
        if type_text.startswith("tuple"):
            items = [raw] if isinstance(raw, (str, dict)) else list(raw)
            return tuple(i.strip() if isinstance(i, str) else i for i in items)
        if type_text.startswith("Mapping"):
            if not isinstance(raw, dict):
                raise TypeError("expected a mapping")
            return raw
        if type_text.startswith("str"):
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Setting {spec.name} from {source} has the wrong type: {exc}") from exc
    return raw
