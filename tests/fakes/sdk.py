"""Request checks and answer models from the providers' official SDKs (test-only dependencies).

A fake that checks requests only against its own idea of the API shares the
code's assumptions. These helpers validate a request body against the SDK's
request types (OpenAI and Anthropic publish TypedDicts, Google pydantic models
with unknown fields forbidden) and build answers through the SDK's response
models, so an answer the real SDK could not read is not sent either.

The TypedDicts are validated with pydantic's ``TypeAdapter``; two gaps of that
are closed here: ``Iterable`` fields validate lazily (the iterators are run
through), and unknown keys are ignored (a key of the request that the
validated copy lost is reported: the real APIs refuse unknown parameters).
The SDKs are imported on first use: they take a second or two.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter, ValidationError


@functools.cache
def _adapter(kind: str) -> TypeAdapter:
    if kind == "openai":
        from openai.types.chat import completion_create_params as params
        return TypeAdapter(params.CompletionCreateParamsNonStreaming)
    if kind == "openai-stream":
        from openai.types.chat import completion_create_params as params
        return TypeAdapter(params.CompletionCreateParamsStreaming)
    if kind == "anthropic":
        from anthropic.types import message_create_params as params
        return TypeAdapter(params.MessageCreateParamsNonStreaming)
    if kind == "anthropic-stream":
        from anthropic.types import message_create_params as params
        return TypeAdapter(params.MessageCreateParamsStreaming)
    raise KeyError(kind)


def _materialize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _materialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator" or isinstance(value, Iterator):
        return [_materialize(v) for v in value]
    return value


def _unknown(sent: Any, kept: Any, path: str) -> list[str]:
    if isinstance(sent, dict) and isinstance(kept, dict):
        problems = [f"{path}.{k}: unknown parameter" for k in sent if k not in kept]
        return problems + [p for k in sent if k in kept for p in _unknown(sent[k], kept[k], f"{path}.{k}")]
    if isinstance(sent, list) and isinstance(kept, list):
        return [p for n, (a, b) in enumerate(zip(sent, kept)) for p in _unknown(a, b, f"{path}[{n}]")]
    return []


def _errors(exc: ValidationError, limit: int = 3) -> list[str]:
    return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:limit]]


def typed_dict_problems(kind: str, body: dict[str, Any], *, allow: frozenset[str] = frozenset()) -> list[str]:
    """What the SDK's request type refuses in ``body`` (``allow``: paths of extra keys a host accepts)."""
    try:
        kept = _materialize(_adapter(kind).validate_python(body))
    except ValidationError as exc:
        return _errors(exc)
    except (TypeError, ValueError) as exc:  # the SDK's own validators raise these for some shapes
        return [f"body: {exc}"]
    return [p for p in _unknown(body, kept, "body") if p.split(":")[0].split(".")[-1] not in allow]


def model_problems(model: Any, value: Any, where: str) -> list[str]:
    """What a pydantic SDK model (Google's forbid unknown fields) refuses in ``value`` read as JSON."""
    try:
        model.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        return [f"{where}.{p}" for p in _errors(exc)]
    except (TypeError, ValueError, AttributeError) as exc:  # e.g. a type list where one enum value belongs
        return [f"{where}: {type(exc).__name__}: {exc}"]
    return []


def dump(model: Any, value: dict[str, Any], *, by_alias: bool = False) -> dict[str, Any]:
    """``value`` read through an SDK response model and written back as the API's JSON."""
    built = model.model_validate(value)
    if by_alias:
        return built.model_dump(mode="json", by_alias=True, exclude_none=True)
    return built.model_dump(mode="json", exclude_unset=True)


@functools.cache
def _type_adapter(kind: Any) -> TypeAdapter:
    return TypeAdapter(kind)


def dump_union(kind: Any, value: dict[str, Any]) -> dict[str, Any]:
    """Like ``dump`` for a union of SDK models (a stream event)."""
    adapter = _type_adapter(kind)
    return adapter.dump_python(adapter.validate_python(value), mode="json", exclude_unset=True)
