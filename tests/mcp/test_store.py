"""extensions.json: seeding from the configuration, updates, and what survives a config change."""

from __future__ import annotations

import json
import sys

import pytest

from goose_api.errors import ConfigurationError
from goose_api.mcp.launch import configured_extensions
from goose_api.mcp.store import ExtensionStore
from tests.support.mcp_fixtures import make_settings

CLOCK = {"enabled": True, "type": "stdio", "name": "clock", "cmd": sys.executable, "args": ["-m", "mcp_server_time"],
         "bundled": False, "available_tools": [], "timeout": 20}


def store_for(tmp_path, extensions) -> ExtensionStore:
    return ExtensionStore(tmp_path / "extensions.json", configured_extensions(make_settings(tmp_path, extensions=extensions)))


def test_seed_from_goose_config_format(tmp_path):
    store = store_for(tmp_path, {"clock": CLOCK, "off": {**CLOCK, "name": "off", "enabled": False}})
    assert store.signature() is None
    configs, signature = store.load()
    assert signature == store.signature() is not None
    assert configs == {
        "developer": {"type": "builtin", "name": "developer", "timeout": 300},
        "clock": {"type": "stdio", "name": "clock", "cmd": sys.executable, "args": ["-m", "mcp_server_time"],
                  "timeout": 20, "bundled": False},
    }


def test_updates_survive_and_a_changed_config_is_applied_again(tmp_path):
    store = store_for(tmp_path, {"clock": CLOCK})
    store.load()
    assert store.update(lambda configs: configs.pop("developer", None) is not None)
    assert store.update(lambda configs: configs.setdefault("api", {"type": "builtin", "name": "memory"}) and True)
    assert not store.update(lambda configs: False)
    assert set(store_for(tmp_path, {"clock": CLOCK}).load()[0]) == {"clock", "api"}  # same config: kept as is
    changed = store_for(tmp_path, {"developer": {"enabled": False}})  # clock gone from the config file
    assert set(changed.load()[0]) == {"api"}


def test_every_write_changes_the_signature(tmp_path):
    store = store_for(tmp_path, {})
    _, first = store.load()
    store.update(lambda configs: configs.update(x={"type": "builtin", "name": "memory"}) or True)
    second = store.signature()
    store.update(lambda configs: configs.update(x={"type": "builtin", "name": "mcp_sy"}) or True)  # same size
    assert len({first, second, store.signature()}) == 3


def test_a_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "extensions.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="fix or delete it"):
        store_for(tmp_path, {}).load()
    (tmp_path / "extensions.json").write_text(json.dumps(["list"]))
    with pytest.raises(ConfigurationError, match="not an extensions file"):
        store_for(tmp_path, {}).load()


def test_invalid_configured_extension_is_skipped(tmp_path, caplog):
    configs = configured_extensions(make_settings(tmp_path, extensions={
        "bad": {"enabled": True, "type": "sse", "name": "bad", "uri": "not a url"},
        "developer": {"enabled": False}}))
    assert configs == {}
    assert "extension bad in the configuration is invalid" in caplog.text
