"""The deployment files agree: compose.yaml runs the Procfile's commands against its own PostgreSQL and Redis.

``docker compose config`` is not available here, so the structure is checked
by hand: the four services (and the one-off release), the URLs that point web
and worker at the compose network's postgres and redis, start order by health,
volumes that keep the data, and each process's command equal to its Procfile line.
The Procfile's commands themselves are run by tests/live/test_workers.py.
"""

from __future__ import annotations

import shlex
from urllib.parse import urlsplit

import yaml

from tests.support.app import ROOT


def procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    return {name.strip(): command.strip() for name, _, command in (line.partition(":") for line in lines)}


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_the_procfile_has_web_worker_and_release():
    processes = procfile()
    assert set(processes) == {"web", "worker", "release"}
    assert processes["web"].startswith("gunicorn app:app")
    assert shlex.split(processes["worker"])[-1] == "worker"
    assert shlex.split(processes["release"])[-1] == "migrate"


def test_compose_runs_the_procfile_commands():
    services = compose()["services"]
    for name, command in procfile().items():
        assert shlex.split(services[name]["command"]) == shlex.split(command), name


def test_compose_has_the_two_services_and_points_the_processes_at_them():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "release"} == set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    pg_env = services["postgres"]["environment"]
    for name in ("web", "worker", "release"):
        env = services[name]["environment"]
        database, redis = urlsplit(env["DATABASE_URL"]), urlsplit(env["REDIS_URL"])
        assert database.scheme == "postgresql" and database.hostname == "postgres" and database.port == 5432
        assert (database.username, database.password, database.path) == (
            pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"], "/" + pg_env["POSTGRES_DB"])
        assert redis.scheme == "redis" and redis.hostname == "redis" and redis.port == 6379
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").is_file()


def test_compose_starts_in_order_and_keeps_its_data():
    document = compose()
    services = document["services"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert services["release"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["release"]["restart"] == "no"  # it migrates once, then exits
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["release"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]  # queued turns survive a Redis restart
    volumes = {volume.split(":")[0]: volume.split(":")[1] for name in ("postgres", "redis")
               for volume in services[name]["volumes"]}
    assert volumes == {"postgres-data": "/var/lib/postgresql/data", "redis-data": "/data"}
    assert set(document["volumes"]) == set(volumes)
    assert services["web"]["ports"] == ["8080:8080"] and services["web"]["environment"]["PORT"] == "8080"
    assert "ports" not in services["worker"]  # workers answer no HTTP


def deploying_blocks():
    from tests.docs.markdown import blocks

    return blocks(ROOT / "docs" / "deploying.md")


def covered_here(name: str):
    return [b for b in deploying_blocks() if b.options.get("covered_by") == f"tests/test_deployment.py::{name}"]


def test_the_docs_show_the_procfile_as_it_is():
    (block,) = covered_here("test_the_docs_show_the_procfile_as_it_is")
    shown = [line.strip() for line in block.text.splitlines() if line.strip()]
    assert shown == [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]


def test_the_config_vars_shown_are_settings_goose_api_reads(tmp_path):
    from dataclasses import fields

    from goose_api.providers import PROVIDERS
    from goose_api.settings import Settings

    (block,) = covered_here("test_the_config_vars_shown_are_settings_goose_api_reads")
    variables = dict(line.strip().split("=", 1) for line in block.text.splitlines() if line.strip())
    names = {f.name for f in fields(Settings)}
    for name in variables:
        assert name == "OPENAI_API_KEY" or name.removeprefix("GOOSE_API_").lower() in names | {"key"}, name
    settings = Settings.load(environ={"HOME": str(tmp_path), **variables}, cwd=tmp_path)
    assert (settings.api_key, settings.provider, settings.model) == (
        variables["GOOSE_API_KEY"], variables["GOOSE_API_PROVIDER"], variables["GOOSE_API_MODEL"])
    assert settings.env["OPENAI_API_KEY"] == variables["OPENAI_API_KEY"] and settings.provider in PROVIDERS


def test_the_compose_block_names_the_file_tested_above():
    (block,) = covered_here("test_compose_runs_the_procfile_commands")
    assert block.text.splitlines()[0].strip() == "docker compose up -d --build"
    assert "--scale worker=" in block.text
