"""The configuration shown in docs/providers.md loads, and means what the page says."""

from __future__ import annotations

import re

from goose_api.providers.capabilities import context_limit, is_reasoning_model, takes_images
from goose_api.settings import Settings
from tests.support.app import ROOT


def yaml_blocks(page: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S)


def test_the_providers_page_config_example(tmp_path):
    (block,) = yaml_blocks("providers.md")
    (tmp_path / "config.yaml").write_text(block)
    settings = Settings.load(environ={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert settings.provider == "openai_compatible" and is_reasoning_model("my-reasoner-7b", settings)
    assert not takes_images("openai_compatible", "my-reasoner-7b", settings)
    assert context_limit("my-reasoner-7b", settings) == 32768
    assert takes_images("deepseek", "deepseek-vl2", settings)
