"""Every command shown in README.md and docs/*.md runs, page by page, against a live server (tests/docs/runner.py)."""

from __future__ import annotations

import pytest

from tests.docs.markdown import DATA, PAGES, ROOT, RUNNABLE, blocks
from tests.docs.runner import PageRun


@pytest.mark.live
@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_block_of_the_page_runs_and_answers_as_shown(page, tmp_path):
    run = PageRun(tmp_path)
    try:
        for block in blocks(page):
            run.run(block)
    finally:
        run.close()


def test_every_block_is_run_checked_or_mapped():
    """A fence without a language, or in one the harness cannot run or check, would be skipped silently."""
    unknown = [f"{block.where} ```{block.lang}" for page in PAGES for block in blocks(page)
               if block.lang not in RUNNABLE + DATA]
    assert unknown == []
    assert {"README.md", "docs/configuration.md", "docs/development.md"} <= {
        str(page.relative_to(ROOT)) for page in PAGES}
