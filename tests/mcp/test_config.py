"""The ExtensionConfig request schema (goose's tagged union) and the remove body."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from goose_api.mcp.config import ExtensionConfigSchema, load_extension_config


def messages(data) -> dict:
    with pytest.raises(ValidationError) as info:
        load_extension_config(data)
    return info.value.messages


@pytest.mark.parametrize("config, expected", [
    ({"type": "builtin", "name": "mcp_say"},
     {"type": "builtin", "name": "mcp_say", "timeout": 300, "display_name": None, "description": None,
      "bundled": None}),
    ({"type": "stdio", "name": "time", "cmd": "uvx", "args": ["mcp-server-time"], "envs": {"A": "1"},
      "env_keys": ["B"], "timeout": 10, "description": "clock"},
     {"type": "stdio", "name": "time", "cmd": "uvx", "args": ["mcp-server-time"], "envs": {"A": "1"},
      "env_keys": ["B"], "timeout": 10, "description": "clock", "bundled": None}),
    ({"type": "sse", "name": "remote", "uri": "https://example.test/sse"},
     {"type": "sse", "name": "remote", "uri": "https://example.test/sse", "envs": {}, "env_keys": [],
      "timeout": 300, "description": None, "bundled": None}),
    ({"type": "streamable_http", "name": "h", "uri": "http://localhost:3001/mcp", "headers": {"X": "y"}},
     {"type": "streamable_http", "name": "h", "uri": "http://localhost:3001/mcp", "headers": {"X": "y"},
      "envs": {}, "env_keys": [], "timeout": 300, "description": None, "bundled": None}),
])
def test_each_type_loads_with_defaults(config, expected):
    assert load_extension_config(config) == expected
    assert ExtensionConfigSchema().load(config) == expected


def test_type_is_the_discriminator():
    assert messages({"type": "frontend", "name": "x"}) == {
        "type": ["Must be one of: builtin, sse, stdio, streamable_http."]}
    assert messages({"name": "x"}) == {"type": ["Must be one of: builtin, sse, stdio, streamable_http."]}
    assert messages(["stdio"]) == {"_schema": ["An extension config must be a JSON object."]}


def test_unknown_fields_are_rejected_per_type():
    assert messages({"type": "builtin", "name": "x", "cmd": "ls"}) == {"cmd": ["Unknown field."]}
    assert messages({"type": "sse", "name": "x", "uri": "http://a.test", "headers": {}}) == {
        "headers": ["Unknown field."]}


def test_field_rules():
    assert messages({"type": "stdio", "name": "", "cmd": ""}) == {
        "name": ["Name must not be empty."], "cmd": ["Shorter than minimum length 1."]}
    assert messages({"type": "stdio", "name": "x"}) == {"cmd": ["Missing data for required field."]}
    assert messages({"type": "sse", "name": "x", "uri": "ftp://a.test/x"}) == {
        "uri": ["Must be an http:// or https:// URL."]}
    assert messages({"type": "streamable_http", "name": "x", "uri": "localhost:3000"}) == {
        "uri": ["Must be an http:// or https:// URL."]}
    assert messages({"type": "builtin", "name": "x", "timeout": 0}) == {"timeout": ["Must be greater than 0."]}
    assert messages({"type": "stdio", "name": "x", "cmd": "c", "envs": {"A": 1}}) == {
        "envs": {"A": {"value": ["Not a valid string."]}}}

