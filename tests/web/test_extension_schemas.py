"""The extension endpoints' own bodies: the name a remove sends."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from goose_api.web.schemas.extensions import load_extension_name


def test_remove_accepts_a_bare_string_or_an_object():
    assert load_extension_name("mcp_say") == "mcp_say"
    assert load_extension_name({"name": "mcp_say"}) == "mcp_say"
    for bad in ("", {"name": ""}, {"nome": "x"}, 3, None, ["x"]):
        with pytest.raises(ValidationError):
            load_extension_name(bad)
