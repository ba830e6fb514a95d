"""Every command shown in README.md and docs/*.md runs, page by page, against a live server (tests/docs/runner.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.markdown import DATA, DIALECT_PAGES, PAGES, ROOT, RUNNABLE, blocks
from tests.docs.runner import PageRun


@pytest.mark.live
@pytest.mark.timeout(600)  # a page is a whole session of commands; client.md restarts its server four times
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
    dialect_tests = (ROOT / "tests" / "live" / "test_dialect_docs.py").read_text()
    assert all(f'blocks("{name}")' in dialect_tests for name in DIALECT_PAGES)


# Pages other branches write; the test fails once one exists, so that its name is taken off this list.
PENDING: set[str] = set()
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_links_between_the_pages_resolve():
    broken = []
    for page in (*PAGES, *(ROOT / "docs" / name for name in DIALECT_PAGES), ROOT / "bench" / "README.md"):
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            name = str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)
            if name in PENDING:
                assert not resolved.exists(), f"{name} exists now: take it off PENDING in {__file__}"
            elif not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []
