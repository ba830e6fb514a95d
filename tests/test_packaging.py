"""pyproject.toml against requirements.txt: `pip install .` gets what `make run` installs."""

from __future__ import annotations

import re
import tomllib

from tests.support.app import ROOT


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, version = re.split(r"\s*==\s*", line)
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_pyproject_mirrors_the_pinned_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    installed = pins(project["dependencies"])
    local = pins(project["optional-dependencies"]["local"])
    assert local == {"llama-cpp-python": required["llama-cpp-python"]}
    assert installed == {name: version for name, version in required.items() if name not in local}
    assert project["scripts"]["goose-api"] == "goose_api.cli:main"
