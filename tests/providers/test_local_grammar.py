"""The grammar that holds the embedded model to a well-formed tool call, built without the model.

``accepts`` stands for llama.cpp's parser here: every grammar is offered to it
and these tests record what it was offered. The real parser checks real
grammars in test_local.py (marker ``local_model``).
"""

from __future__ import annotations

import re

import pytest

from goose_api.providers.base import ToolSpec
from goose_api.providers.local_grammar import call_grammar, inline_refs, literal

SHELL = ToolSpec("developer__shell", "Run a command.",
                 {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                  "required": ["command"]})
EDITOR = ToolSpec("developer__text_editor", "Edit files.",
                  {"type": "object", "properties": {"command": {"enum": ["view", "write"]},
                                                    "path": {"type": "string"}}, "required": ["command", "path"]})


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines())


def every_reference_defined(grammar: str) -> None:
    """Each rule a rule names is defined (what llama.cpp's parser checks first)."""
    defined = rules(grammar)
    for body in defined.values():
        unquoted = re.sub(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]', " ", body)
        for name in re.findall(r"[a-zA-Z][a-zA-Z0-9-]*", unquoted):
            assert name in defined, f"{name} is used but not defined"


class Parser:
    """Records what it was asked; refuses the grammars ``refuse`` matches."""

    def __init__(self, refuse: str | None = None):
        self.refuse = refuse
        self.asked: list[str] = []

    def __call__(self, grammar: str) -> bool:
        self.asked.append(grammar)
        return not (self.refuse and re.search(self.refuse, grammar))


def test_a_call_names_an_offered_tool_and_takes_its_arguments():
    grammar = call_grammar([SHELL, EDITOR], Parser())
    every_reference_defined(grammar)
    r = rules(grammar)
    assert r["root"] == '"<tool_call>[" "\\n"? ( call-0 | call-1 ) "\\n"? "]</tool_call>"'
    assert '"\\"developer__shell\\""' in r["call-0"] and "call-0-arguments" in r["call-0"]
    assert '"\\"developer__text_editor\\""' in r["call-1"]
    assert r["call-0-arguments-command-kv"] == '"\\"command\\"" space ":" space string'
    assert "call-0-arguments-timeout-kv" in r["call-0-arguments"]  # optional, after the required one
    assert r["call-1-arguments-command"] == '"\\"view\\"" | "\\"write\\""'


def test_each_tool_is_checked_by_the_parser_before_it_is_offered():
    parser = Parser()
    call_grammar([SHELL, EDITOR], parser)
    assert [rules(g)["root"] for g in parser.asked[:2]] == ["call-0", "call-1"]
    assert parser.asked[2] == call_grammar([SHELL, EDITOR], Parser())  # and then the whole grammar
    for asked in parser.asked:
        every_reference_defined(asked)
    assert call_grammar([SHELL, EDITOR], Parser(refuse=r"call-0 \| call-1")) is None


def test_a_schema_the_converter_cannot_express_takes_any_object():
    odd = ToolSpec("x__odd", "", {"type": "object", "properties": {"a": {"not": {"type": "string"}}}})
    remote = ToolSpec("x__remote", "", {"$ref": "https://example.com/schema.json"})
    dangling = ToolSpec("x__dangling", "", {"$ref": "#/$defs/missing"})
    grammar = call_grammar([odd, remote, dangling], Parser())
    every_reference_defined(grammar)
    for n in range(3):
        assert rules(grammar)[f"call-{n}-arguments"] == "object"


def test_a_schema_the_parser_refuses_takes_any_object_and_a_tool_it_never_accepts_is_not_offered():
    backslash = ToolSpec("x__path", "", {"type": "object", "properties": {"sep": {"enum": ["\\"]}}})
    grammar = call_grammar([SHELL, backslash], Parser(refuse=r"call-1-arguments-sep"))
    assert rules(grammar)["call-1-arguments"] == "object"
    assert rules(grammar)["call-0-arguments"] != "object"
    assert call_grammar([SHELL], Parser(refuse=r"developer__shell")) is None
    grammar = call_grammar([SHELL, EDITOR], Parser(refuse=r"developer__shell"))
    assert rules(grammar)["root"] == '"<tool_call>[" "\\n"? ( call-1 ) "\\n"? "]</tool_call>"'


def test_tool_names_are_matched_exactly_whatever_they_hold():
    named = ToolSpec('odd__na"me\\with\nstuff', "", {"type": "object"})
    assert f'space ":" space {literal(chr(34) + "odd__na" + chr(92) + chr(34) + "me" + chr(92) * 2 + "with" + chr(92) + "nstuff" + chr(34))} space' \
        in rules(call_grammar([named], Parser()))["call-0"]
    assert literal('a"b\\c\nd\re') == r'"a\"b\\c\nd\re"'


def test_no_tools_no_grammar():
    assert call_grammar([], Parser()) is None


def test_local_refs_are_inlined_and_recursion_is_cut():
    schema = {"type": "object", "$defs": {"City": {"type": "string"},
                                          "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
              "properties": {"city": {"$ref": "#/$defs/City"}, "tree": {"$ref": "#/$defs/Node"}}}
    inlined = inline_refs(schema)
    assert "$defs" not in inlined and inlined["properties"]["city"] == {"type": "string"}
    depth, node = 0, inlined["properties"]["tree"]
    while node:
        node, depth = node["properties"]["next"], depth + 1
    assert depth == 4
    with pytest.raises(ValueError):
        inline_refs({"$ref": "https://example.com/x.json"})
    with pytest.raises(KeyError):
        inline_refs({"$ref": "#/$defs/none"})
