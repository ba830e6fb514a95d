"""The docs harness itself: how it splits blocks and commands, reads the answers shown, and refuses a wrong one."""

from __future__ import annotations

import pytest

from tests.docs.markdown import blocks, commands, shape
from tests.docs.runner import check_answer, check_covered


def test_a_block_carries_the_annotation_right_above_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('Text\n\n<!-- doc-test: {"model": ["hi"]} -->\n```sh\necho 1\n```\n\n```python\nx = 1\n```\n')
    first, second = blocks(page)
    assert (first.lang, first.text, first.options, first.line) == ("sh", "echo 1\n", {"model": ["hi"]}, 4)
    assert (second.lang, second.options) == ("python", {})


def test_an_unknown_option_is_refused(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('<!-- doc-test: {"skip": true} -->\n```sh\necho 1\n```\n')
    with pytest.raises(AssertionError, match="unknown doc-test options"):
        blocks(page)


def test_commands_keep_continuations_and_the_answers_shown():
    script = ('export A=1\ncurl -s http://x/health   # {"status": "ok"}, no key needed\n'
              'curl -si -X POST http://x \\\n  -d \'{"a": "#b"}\'\n# HTTP/1.1 202 ACCEPTED\n'
              '# {"status": "accepted"}\necho hi  # prose\n# prints: hi\n')
    found = commands(script)
    assert [c.text for c in found] == ["export A=1", "curl -s http://x/health",
                                      'curl -si -X POST http://x \\\n  -d \'{"a": "#b"}\'', "echo hi"]
    assert found[1].expected_json == '{"status": "ok"}'
    assert (found[2].expected_status, found[2].expected_json) == (202, '{"status": "accepted"}')
    assert (found[3].expected_json, found[3].expected_text) == (None, "hi")


def test_shape_names_keys_and_fixes_only_plain_words():
    keys, values = shape('{"status": "success", "message": "Reply: hi", "session_id": "2026_1", "n": 4, '
                         '"nested": {"inner": "x"}, "id", "ok": true}')
    assert keys == {"status", "message", "session_id", "n", "nested", "id", "ok"}
    assert values == {"status": "success", "n": 4, "ok": True}


@pytest.mark.parametrize("output, problem", [
    ('{"status": "success"}', "lacks"),                                      # a key shown is missing
    ('{"status": "error", "session_id": "x"}', "has"),                       # a word shown differs
    ('HTTP/1.1 409 CONFLICT\n\n{"status": "success", "session_id": "x"}', "answered 409"),
])
def test_a_wrong_answer_fails(output, problem):
    (command,) = commands('curl -si x\n# {"status": "success", "session_id": "..."}\n')
    command.expected_status = 200 if problem.startswith("answered") else None
    with pytest.raises(AssertionError, match=problem):
        check_answer("here", command, output, errors_shown=False)


def test_an_error_answer_fails_unless_the_block_shows_errors():
    (command,) = commands("curl -s x\n")
    with pytest.raises(AssertionError, match="answered an error"):
        check_answer("here", command, '{"status": "error", "error": "not_found"}', errors_shown=False)
    check_answer("here", command, '{"status": "error", "error": "not_found"}', errors_shown=True)


def test_covered_by_must_name_a_test_that_exists(tmp_path):
    page = tmp_path / "page.md"
    page.write_text('<!-- doc-test: {"covered_by": "tests/docs/test_markdown.py::test_nothing_like_it"} -->\n'
                    '```sh\nmake run\n```\n')
    (block,) = blocks(page)
    with pytest.raises(AssertionError, match="does not exist"):
        check_covered(block)
