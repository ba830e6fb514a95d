"""Settings precedence: GOOSE_API_* env > .env > config file > goose CLI config > defaults."""

import json

import pytest
import yaml

from goose_api.errors import ConfigurationError
from goose_api.settings import Settings


def load(tmp_path, environ=None, **kw):
    env = {"HOME": str(tmp_path / "home"), **(environ or {})}
    return Settings.load(environ=env, cwd=tmp_path, **kw)


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert (s.host, s.port, s.max_turns, s.api_key) == ("127.0.0.1", 8080, 50, None)
    assert s.sessions_dir == str(tmp_path / "home/.local/share/goose/sessions")
    assert s.provider is None


def test_xdg_data_home_moves_sessions(tmp_path):
    s = load(tmp_path, {"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert s.sessions_dir == str(tmp_path / "xdg/goose/sessions")


def test_precedence_chain(tmp_path):
    goose_cfg = tmp_path / "home/.config/goose/config.yaml"
    goose_cfg.parent.mkdir(parents=True)
    goose_cfg.write_text(yaml.safe_dump({"GOOSE_PROVIDER": "anthropic", "GOOSE_MODEL": "claude-x",
                                         "GOOSE_MODE": "approve"}))
    before = goose_cfg.read_text()
    (tmp_path / "config.yaml").write_text("port: 9001\nmodel: from-file\nmax_turns: 7\n")
    (tmp_path / ".env").write_text("GOOSE_API_PORT=9002\nGOOSE_API_MAX_TURNS=8\nOPENAI_API_KEY=sk-dotenv\n")
    s = load(tmp_path, {"GOOSE_API_PORT": "9003"})
    assert s.port == 9003                      # environment beats .env
    assert s.max_turns == 8                    # .env beats config file
    assert s.model == "from-file"              # config file beats goose CLI config
    assert s.provider == "anthropic"           # goose CLI config beats defaults
    assert s.mode == "approve"
    assert s.env["OPENAI_API_KEY"] == "sk-dotenv"
    assert goose_cfg.read_text() == before     # never written


def test_real_environment_beats_dotenv_for_credentials(tmp_path):
    (tmp_path / ".env").write_text("OPENAI_API_KEY=from-file\n")
    assert load(tmp_path, {"OPENAI_API_KEY": "from-env"}).env["OPENAI_API_KEY"] == "from-env"


def test_goose_api_key_and_port_variable(tmp_path):
    s = load(tmp_path, {"GOOSE_API_KEY": "secret", "PORT": "5000"})
    assert (s.api_key, s.host, s.port) == ("secret", "0.0.0.0", 5000)


@pytest.mark.parametrize("name,text", [
    ("config.json", json.dumps({"port": 7001})),
    ("config.toml", "port = 7001\n"),
    ("config", "port: 7001\n"),
])
def test_config_formats(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    assert load(tmp_path).port == 7001


def test_explicit_config_path(tmp_path):
    path = tmp_path / "elsewhere.yaml"
    path.write_text("threads: 32\n")
    assert load(tmp_path, {"GOOSE_API_CONFIG": str(path)}).threads == 32
    with pytest.raises(ConfigurationError, match="not a file"):
        load(tmp_path, {"GOOSE_API_CONFIG": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize("text,match", [
    ("port: [1, 2]\n", "port"),
    ("no_such_setting: 1\n", "Unknown setting"),
    ("- a list\n", "mapping"),
    ("mode: yolo\n", "mode"),
    ("port: {{\n", "Cannot read"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, match):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigurationError, match=match):
        load(tmp_path)


def test_bad_env_value(tmp_path):
    with pytest.raises(ConfigurationError, match="max_turns"):
        load(tmp_path, {"GOOSE_API_MAX_TURNS": "lots"})


def test_repo_config_yaml_documents_every_setting():
    from dataclasses import fields
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "config.yaml").read_text()
    for f in fields(Settings):
        if f.name not in ("env", "sources", "files"):
            assert f"# {f.name}:" in text or f"\n{f.name}:" in text, f"config.yaml does not document {f.name}"


def test_the_files_settings_came_from_are_private(tmp_path):
    goose_cfg = tmp_path / "home/.config/goose/config.yaml"
    goose_cfg.parent.mkdir(parents=True)
    goose_cfg.write_text("GOOSE_MODEL: m\n")
    (tmp_path / "config.yaml").write_text("max_turns: 7\n")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-dotenv\n")
    s = load(tmp_path, {"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert set(s.files) == {str(goose_cfg), str(tmp_path / "config.yaml"), str(tmp_path / ".env")}
    assert set(s.private_paths()) == {str(tmp_path / "xdg/goose-api"), str(tmp_path / "xdg/goose/sessions"),
                                      str(goose_cfg), str(tmp_path / "config.yaml"), str(tmp_path / ".env"),
                                      str(tmp_path / "home/.config/goose")}
    explicit = tmp_path / "elsewhere.yaml"
    explicit.write_text("max_turns: 3\n")
    assert str(explicit) in load(tmp_path, {"GOOSE_API_CONFIG": str(explicit)}).files


@pytest.mark.parametrize("text, message", [
    ("developer_sandbox: maybe\n", "developer_sandbox must be auto, bwrap or off"),
    ("api_keys: [{name: a, key: k, webhook_secret: ''}]\n", "webhook_secret must be a non-empty string"),
    ("api_keys: [{name: a, key: k, webhook_secret: 12}]\n", "webhook_secret must be a non-empty string")])
def test_tenancy_settings_are_checked(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load(tmp_path)


def test_long_request_limits_leave_threads_for_short_requests(tmp_path):
    assert load(tmp_path).long_request_limits == (768, 512), "3/4 and 1/2 of the default 1024 threads"
    assert load(tmp_path, {"GOOSE_API_THREADS": "16"}).long_request_limits == (12, 8)
    assert load(tmp_path, {"GOOSE_API_LONG_REQUEST_LIMIT": "100", "GOOSE_API_LONG_REQUEST_KEY_LIMIT": "500"}
                ).long_request_limits == (100, 100), "no key may hold more than the whole worker"


@pytest.mark.parametrize("environ", [
    {"GOOSE_API_LONG_REQUEST_LIMIT": "1024"},                       # as many as threads: none left for /health
    {"GOOSE_API_THREADS": "8", "GOOSE_API_LONG_REQUEST_LIMIT": "9"},
    {"GOOSE_API_LONG_REQUEST_LIMIT": "0"},
    {"GOOSE_API_LONG_REQUEST_KEY_LIMIT": "0"},
    {"GOOSE_API_THREADS": "1"},                                     # one thread cannot serve both kinds
])
def test_long_request_limits_that_would_starve_short_requests_are_refused(tmp_path, environ):
    with pytest.raises(ConfigurationError, match="long_request"):
        load(tmp_path, environ)


PG = "postgresql://goose@127.0.0.1:5432/goose"


def test_redis_url_comes_from_the_add_ons_variable_unless_goose_api_redis_url_is_set(tmp_path):
    s = load(tmp_path, {"REDIS_URL": "redis://add-on:6379/0", "DATABASE_URL": PG})
    assert (s.redis_url, s.sources["redis_url"]) == ("redis://add-on:6379/0", "REDIS_URL")
    (tmp_path / "config.yaml").write_text("redis_url: redis://from-file:6379/0\n")
    assert load(tmp_path, {"REDIS_URL": "redis://add-on:6379/0", "DATABASE_URL": PG}).redis_url == \
        "redis://add-on:6379/0"  # the variable the host sets beats the config file
    ours = load(tmp_path, {"REDIS_URL": "redis://add-on:6379/0", "GOOSE_API_REDIS_URL": "redis://mine:6379/1",
                           "DATABASE_URL": PG})
    assert ours.redis_url == "redis://mine:6379/1"


def test_redis_url_without_a_database_is_refused_with_what_to_set(tmp_path):
    with pytest.raises(ConfigurationError, match="REDIS_URL is set but DATABASE_URL is not.*Set DATABASE_URL"):
        load(tmp_path, {"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert load(tmp_path, {"DATABASE_URL": PG}).redis_url is None  # a database alone: turns in the web processes


@pytest.mark.parametrize("environ,match", [
    ({"REDIS_URL": "http://127.0.0.1:6379", "DATABASE_URL": PG}, "REDIS_URL must be a redis://"),
    ({"GOOSE_API_WORKER_THREADS": "0"}, "worker_threads must be at least 1"),
])
def test_bad_queue_settings_are_refused(tmp_path, environ, match):
    with pytest.raises(ConfigurationError, match=match):
        load(tmp_path, environ)
