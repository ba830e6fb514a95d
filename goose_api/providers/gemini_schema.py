"""MCP tool schemas (any JSON Schema) cut down to the schema Gemini's function declarations take.

Gemini's ``Schema`` is a small OpenAPI subset: one ``type`` (no type arrays),
string-only ``enum``, ``anyOf`` (no ``oneOf``/``allOf``/``not``), no ``$ref``,
and an unknown keyword anywhere (``additionalProperties``, ``propertyNames``,
``$schema``, ...) fails the whole request. MCP servers send all of these. The
cleaning keeps what Gemini understands and turns the rest into an equivalent
or, where there is none, into words in the ``description``:

- ``$ref`` to ``$defs``/``definitions`` is inlined (a recursive one is cut to an object);
- ``allOf`` is merged, ``oneOf`` becomes ``anyOf``, a ``null`` member makes it ``nullable``;
- ``type: [..., "null"]`` becomes ``nullable``; several types become ``anyOf``;
- ``const`` and string enums stay enums; a non-string enum is described instead;
- ``required`` names only properties that exist; an array gets ``items``.

We send the cleaned schema as ``parameters`` rather than the newer
``parametersJsonSchema``: every Gemini model and both endpoints take it.
"""

from __future__ import annotations

import json
from typing import Any

TYPES = ("string", "number", "integer", "boolean", "array", "object")
KEPT = ("description", "nullable", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
        "pattern", "minProperties", "maxProperties")
FORMATS = {"string": ("enum", "date-time"), "number": ("float", "double"), "integer": ("int32", "int64")}
MAX_DEPTH = 8  # $ref expansions along one path: a recursive schema is cut here


def clean_schema(schema: Any) -> dict[str, Any]:
    """The Gemini schema for a JSON schema (the input is never changed)."""
    if not isinstance(schema, dict):
        return {"type": "object"}
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, defs, 0)


def _resolve(schema: dict[str, Any], defs: dict[str, Any], depth: int) -> tuple[dict[str, Any], int]:
    """``schema`` with its ``$ref`` (and nested refs of the target) merged in."""
    while isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs.get(name)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        if not isinstance(target, dict) or depth >= MAX_DEPTH:
            return {"type": "object", **({"description": rest["description"]} if "description" in rest else {})}, depth
        schema, depth = {**target, **rest}, depth + 1
    return schema, depth


def _merge_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or []:
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**(merged.get("properties") or {}), **value}
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _clean(schema: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": "string"} if schema is not False else {"type": "object"}
    schema, depth = _resolve(schema, defs, depth)
    if "allOf" in schema:
        schema = _merge_all_of(schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return _union(schema, options, defs, depth)
    out: dict[str, Any] = {k: schema[k] for k in KEPT if k in schema and not isinstance(schema[k], (dict, list))}
    kind = _type(schema, out)
    if isinstance(kind, list):  # several types: one schema per type
        rest = {k: v for k, v in schema.items() if k != "type"}
        return {**{k: v for k, v in out.items() if k in ("description", "nullable")},
                "anyOf": [_clean({**rest, "type": t}, defs, depth) for t in kind]}
    if kind:
        out["type"] = kind
    _enum(schema, out)
    fmt = schema.get("format")
    if fmt in FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt
    if out.get("type") == "object" and isinstance(schema.get("properties"), dict):
        out["properties"] = {name: _clean(prop, defs, depth) for name, prop in schema["properties"].items()}
        required = [r for r in schema.get("required") or [] if r in out["properties"]]
        if required:
            out["required"] = required
    if out.get("type") == "array":
        out["items"] = _clean(schema["items"], defs, depth) if isinstance(schema.get("items"), dict) \
            else {"type": "string"}
    return out


def _type(schema: dict[str, Any], out: dict[str, Any]) -> str | list[str] | None:
    """The Gemini type(s); ``null`` in a type list becomes ``nullable``. Guessed from the keywords when absent."""
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            out["nullable"] = True
        kinds = [k for k in kind if k in TYPES]
        return kinds[0] if len(kinds) == 1 else (kinds or "string")
    if kind in TYPES:
        return kind
    if kind == "null":
        out["nullable"] = True
        return "string"
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if "enum" in schema or "const" in schema:
        return "string"
    return None


def _enum(schema: dict[str, Any], out: dict[str, Any]) -> None:
    values = schema["enum"] if isinstance(schema.get("enum"), list) else \
        [schema["const"]] if "const" in schema else None
    if values is None:
        return
    if out.get("type") == "string" and all(isinstance(v, str) for v in values):
        out["enum"] = values
        return
    allowed = "Allowed values: " + ", ".join(json.dumps(v) for v in values)
    out["description"] = f"{out['description']} ({allowed})" if out.get("description") else allowed


def _union(schema: dict[str, Any], options: list[Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """``anyOf``/``oneOf``: ``null`` members make it nullable; a single member is merged into its parent."""
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
    nullable = any(isinstance(o, dict) and o.get("type") == "null" for o in options)
    members = [_clean(o, defs, depth) for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
    head = {k: v for k, v in _clean(rest, defs, depth).items() if k in ("description",)} if rest else {}
    if nullable:
        head["nullable"] = True
    if len(members) == 1:
        return {**members[0], **head}
    return {**head, "anyOf": members} if members else {**head, "type": "string"}
