"""The llama.cpp grammar (GBNF) that holds the embedded model to a well-formed tool call.

``root ::= "<tool_call>[" call "]</tool_call>"`` with one call whose name is one
of the offered tools and whose arguments follow that tool's JSON schema, as far
as llama-cpp's schema converter can express it. (Whether the model calls a
tool at all is decided before, on its first token: ``local.py``. A plain answer
runs with no grammar, which would slow every token about threefold.)

A grammar llama.cpp cannot parse crashes the process (llama-cpp-python passes
the parser's NULL on), so each tool's rules are checked with ``accepts`` (the
loaded model's own parser) before they are used: a tool whose schema does not
convert, or converts to rules llama.cpp refuses (a ``pattern`` with ``\\d``, a
quote and a newline in a ``const``), takes any JSON object as arguments.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from goose_api.providers.base import ToolSpec
from goose_api.providers.local_format import CALL_CLOSE, CALL_OPEN

log = logging.getLogger("goose_api.providers")

ANY_OBJECT: dict[str, Any] = {"type": "object"}
MAX_REF_DEPTH = 4  # a recursive schema is followed this deep, then takes any value


def literal(text: str) -> str:
    """A GBNF string literal matching ``text`` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def call_grammar(tools: list[ToolSpec], accepts: Callable[[str], bool]) -> str | None:
    """One call over ``tools``; None when no tool can be expressed (its name, even) or llama.cpp refuses it."""
    rules: dict[str, str] = {}
    calls = []
    for index, tool in enumerate(tools):
        tool_rules = _tool_rules(f"call-{index}", tool, accepts)
        if tool_rules is None or any(rules.get(k, v) != v for k, v in tool_rules.items()):
            log.warning("local tool cannot be called: no grammar for it tool=%s", tool.name)
            continue
        rules.update(tool_rules)
        calls.append(f"call-{index}")
    if not calls:
        return None
    root = f'root ::= {literal(CALL_OPEN + "[")} "\\n"? ( {" | ".join(calls)} ) "\\n"? {literal("]" + CALL_CLOSE)}'
    grammar = "\n".join([root] + [f"{name} ::= {rule}" for name, rule in sorted(rules.items())])
    if not accepts(grammar):  # each part parsed alone: a refusal here is a bug of ours, not a crash
        log.warning("local tool-call grammar refused by llama.cpp tools=%s", ",".join(t.name for t in tools))
        return None
    return grammar


def _tool_rules(name: str, tool: ToolSpec, accepts: Callable[[str], bool]) -> dict[str, str] | None:
    """The rules of one call (``name`` and what it needs), with the schema's arguments or any object's."""
    for schema in (tool.input_schema, ANY_OBJECT):
        try:
            rules, arguments = _convert(inline_refs(schema), f"{name}-arguments")
        except Exception as exc:  # the converter asserts or fails on schemas it does not support
            log.info("local tool schema not expressible tool=%s error=%s", tool.name, type(exc).__name__)
            continue
        rules[name] = (f'"{{" space "\\"name\\"" space ":" space {literal(json.dumps(tool.name))} space '
                       f'"," space "\\"arguments\\"" space ":" space {arguments} "}}" space')
        if accepts(f"root ::= {name}\n" + "\n".join(f"{k} ::= {v}" for k, v in rules.items())):
            return rules
        log.info("local tool grammar refused by llama.cpp tool=%s", tool.name)
    return None


def _convert(schema: dict[str, Any], name: str) -> tuple[dict[str, str], str]:
    """llama-cpp's JSON-schema converter: (its rules by name, the rule for ``schema``)."""
    from llama_cpp.llama_grammar import SchemaConverter  # native code: never loaded at import

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    rule = converter.visit(schema, name)
    rules = dict(line.split(" ::= ", 1) for line in converter.format_grammar().splitlines())
    return rules, rule


def inline_refs(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """``schema`` with its local ``$ref``s replaced by what they point to (the root's ``$defs`` dropped).

    Raises: KeyError for a reference to nothing, ValueError for a remote one.
    """
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(item, root, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#"):
            raise ValueError(f"remote $ref {ref}")
        if depth >= MAX_REF_DEPTH:
            return {}
        target = root
        for part in filter(None, ref[1:].split("/")):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return inline_refs(target, root, depth + 1)
    return {key: inline_refs(value, root, depth) for key, value in schema.items()
            if not (schema is root and key in ("$defs", "definitions"))}
