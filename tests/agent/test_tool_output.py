"""Tool output kept in the session: items in order while they fit, a text cut, other items dropped, then the note."""

from __future__ import annotations

import json

from goose_api import conversation as conv
from goose_api.agent.tool_output import NOTE, limit_content, limit_text


def test_output_that_fits_is_kept_as_it_is():
    content = [conv.text("a" * 10), conv.image("QUJD", "image/png")]
    assert limit_content(content, 1000) is content
    assert limit_text("short", 5) == "short"


def test_the_first_items_that_fit_are_kept_a_text_is_cut_then_the_note():
    image = conv.image("A" * 100, "image/png")
    content = [conv.text("a" * 300), image, conv.text("b" * 400), conv.text("c" * 10)]
    image_size = len(json.dumps(image))
    kept = limit_content(content, 600)
    assert kept == [conv.text("a" * 300), image, conv.text("b" * (300 - image_size)),
                    conv.text(NOTE.format(total=710 + image_size, kept=600))]


def test_an_item_that_is_not_text_and_does_not_fit_ends_what_is_kept():
    content = [conv.text("a" * 300), conv.image("A" * 5000, "image/png"), conv.text("b" * 10)]
    kept = limit_content(content, 600)
    assert [conv.kind(item) for item in kept] == ["text", "text"] and kept[0] == conv.text("a" * 300)
    assert conv.text_of(kept[-1]).startswith("[The tool's output was")


def test_an_error_message_is_cut_with_the_note():
    cut = limit_text("e" * 5000, 100)
    assert cut.startswith("e" * 100 + "\n") and cut.endswith(NOTE.format(total=5000, kept=100))
