"""A fingerprint of a subagent spec, field by field, so that a worker never silently runs a
different subagent than the one the orchestrator offered its model.

Workers cannot receive a spec (tools and models do not travel); they rebuild it from their own
registry. If their copy differs (another prompt, another tool list, another model),
deepagents in one process could never have behaved like that. Each delegation carries a digest
of every field of the spec as the orchestrator saw it; the worker compares its own and
refuses, naming the fields that differ.

Objects are described by what identifies them across processes (a tool's name, a model's class
and model name, a middleware's name), never by `repr`, which holds memory addresses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from pydantic import BaseModel

FIELDS = (
    "description",
    "system_prompt",
    "model",
    "tools",
    "skills",
    "memory",
    "permissions",
    "interrupt_on",
    "response_format",
    "middleware",
    "queue",
)


def _qualified(value: Any) -> str:
    kind = value if isinstance(value, type) else type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _canonical(value: Any) -> Any:  # noqa: PLR0911 (one case per kind of value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_canonical(item) for item in value]
    if isinstance(value, BaseTool):
        return {"tool": value.name}
    if isinstance(value, BaseChatModel):
        name = getattr(value, "model_name", None) or getattr(value, "model", None)
        return {"model": _qualified(value), "name": name if isinstance(name, str) else None}
    if isinstance(value, BaseModel):
        return {"type": _qualified(value), "fields": _canonical(value.model_dump())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": _qualified(value), "fields": _canonical(dataclasses.asdict(value))}
    if isinstance(value, type) or callable(value):
        return {"callable": getattr(value, "__qualname__", _qualified(value))}
    named = getattr(value, "name", None)  # middleware
    return {"type": _qualified(value), "name": named if isinstance(named, str) else None}


def _digest(value: Any) -> str:
    text = json.dumps(_canonical(value), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def spec_digests(spec: Mapping[str, Any]) -> dict[str, str]:
    """The spec as written: what a spec leaves out (a model, tools) is sent with each
    delegation as the main agent's (`shared.schemas.Inherited`), not assumed from settings."""
    return {field: _digest(spec.get(field)) for field in FIELDS}


def differing_fields(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    return [field for field in FIELDS if field in expected and expected[field] != actual.get(field)]
