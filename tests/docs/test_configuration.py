"""docs/configuration.md and config.yaml list exactly the settings goose_api/settings.py knows, with its defaults."""

from __future__ import annotations

import re
from dataclasses import MISSING, fields

from goose_api.settings import Settings
from tests.docs.markdown import ROOT

INTERNAL = {"env", "sources", "files"}  # how the settings were loaded, not settings
SETTINGS = {f.name: f for f in fields(Settings) if f.name not in INTERNAL}


def table_rows() -> dict[str, str]:
    """setting -> default cell of the "Every setting" table."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text.split("## Every setting", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+)` \| ([^|]*) \|", line)
        if match:
            assert match.group(1) not in rows, f"{match.group(1)} is in the table twice"
            rows[match.group(1)] = match.group(2).strip()
    return rows


def shown(value: object) -> str:
    return "`" + {True: "true", False: "false"}.get(value, str(value)) + "`" if isinstance(value, bool) \
        else f"`{value}`"


def test_the_table_lists_exactly_the_settings():
    assert sorted(table_rows()) == sorted(SETTINGS)


def test_the_table_gives_the_defaults():
    rows = table_rows()
    for name, spec in SETTINGS.items():
        default = spec.default
        if default is MISSING or default in (None, "", ()) or isinstance(default, dict):
            continue  # computed, unset or a collection: the cell says what happens instead
        assert rows[name] == shown(default), f"{name}: the table says {rows[name]}, settings.py {default!r}"


def test_config_yaml_lists_exactly_the_settings():
    text = (ROOT / "config.yaml").read_text()
    listed = re.findall(r"^# ([a-z_]+): ", text, re.M)
    assert len(listed) == len(set(listed)), "a setting is listed twice in config.yaml"
    assert sorted(listed) == sorted(SETTINGS)
