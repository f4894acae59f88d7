"""Runtime context across the wire: namespacing per subagent, JSON checks, secret handling.

deepagents hands every subagent the parent's whole context object in-process. Across machines
that object has to become JSON, and each subagent should see only its own slice: plain keys go
to all, `"<subagent>:<key>"` only to that subagent (as `<key>`). Secrets travel separately so that
nothing which displays a job (Flower, logs, reports, errors) ever shows them.

A context that is a dataclass or a pydantic model (as a `context_schema` of either kind makes
it) reaches the subagent as that type, as in deepagents: its fields travel like a dict's keys,
its class as an import path, and the worker builds the subagent's instance from its slice. A
pydantic model's extra fields (`extra="allow"`) are keys like any other, so they may be
namespaced; a dataclass's field names cannot be.
"""

from __future__ import annotations

import dataclasses
import json
import weakref
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, JsonValue, SecretStr, TypeAdapter

from shared.registry import RegistryError, import_object, import_path_of

NAMESPACE_SEPARATOR = ":"
REDACTED = "**********"


class ContextError(ValueError):
    """The runtime context cannot be sent to workers; the message names the key."""


@dataclass(frozen=True)
class SubagentContext:
    """The slice of the runtime context one subagent receives."""

    values: dict[str, JsonValue]
    secrets: dict[str, SecretStr]
    secret_str_keys: tuple[str, ...]
    type_path: str | None = None
    """Where the worker imports the context's class from, when it is not a mapping."""


def context_as_mapping(context: object) -> dict[str, Any]:
    """Accept the shapes LangGraph accepts for `context=`: a mapping, a dataclass or a pydantic
    model (read attribute by attribute so `SecretStr` fields stay secret)."""
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return {str(key): value for key, value in context.items()}
    if dataclasses.is_dataclass(context) and not isinstance(context, type):
        return {field.name: getattr(context, field.name) for field in dataclasses.fields(context)}
    if isinstance(context, BaseModel):
        fields = {name: getattr(context, name) for name in type(context).model_fields}
        return fields | (context.model_extra or {})
    raise ContextError(
        f"runtime context of type {type(context).__name__} cannot be sent to workers; "
        "pass a dict, a dataclass or a pydantic model"
    )


def _is_typed(cls: object) -> bool:
    return isinstance(cls, type) and (dataclasses.is_dataclass(cls) or issubclass(cls, BaseModel))


_class_paths: weakref.WeakKeyDictionary[type[Any], str | None] = weakref.WeakKeyDictionary()
"""Searching every module for a class defined elsewhere than it is held would cost every
delegation (of every subagent, in `validate_context`) the same search again."""


def _class_path(cls: type[Any]) -> str | None:
    if cls not in _class_paths:
        _class_paths[cls] = import_path_of(cls)
    return _class_paths[cls]


def _type_path(context: object) -> str | None:
    """The import path of a typed context's class, for the worker to rebuild it as one."""
    cls: type[Any] = type(context)
    if not _is_typed(cls):
        return None  # a mapping, or nothing: `context_as_mapping` refuses anything else
    path = _class_path(cls)
    if path is None:
        raise ContextError(
            f"runtime context of type {cls.__qualname__} reaches subagents as that type, which workers "
            "import: define the class at module level in a module the workers can import"
        )
    return path


def _split_key(key: str, subagent_names: Collection[str]) -> tuple[str | None, str]:
    prefix, separator, rest = key.partition(NAMESPACE_SEPARATOR)
    if not separator:
        return None, key
    if prefix not in subagent_names or not rest:
        known = ", ".join(sorted(subagent_names))
        raise ContextError(
            f"runtime context key {key!r} looks namespaced but {prefix!r} is not a subagent; "
            f"'<subagent>:<key>' keys must name one of: {known}"
        )
    return prefix, rest


_JSON = TypeAdapter(JsonValue)


def _checked_json(key: str, value: object) -> JsonValue:
    # The same validator as the wire (`Delegation.context`), plus no NaN: json.dumps alone would
    # quietly turn tuples into lists and int keys into strings, and fail only at send time.
    try:
        _JSON.validate_python(value, strict=True)
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ContextError(
            f"runtime context key {key!r} holds a {type(value).__name__} that is not plain JSON: "
            "workers receive the context as JSON, so pass plain data (an id, a URL, a dict) "
            "and let the subagent's tools open what they need"
        ) from error
    return value  # type: ignore[return-value]


def validate_context(context: object, subagent_names: Collection[str], secret_keys: Collection[str]) -> bool:
    """Fail before any model call rather than at the first delegation. True if any subagent
    would receive a secret."""
    return any(context_for(name, context, subagent_names, secret_keys).secrets for name in subagent_names)


def context_for(
    subagent: str,
    context: object,
    subagent_names: Collection[str],
    secret_keys: Collection[str],
) -> SubagentContext:
    """The context `subagent` sees: plain keys, then its own namespaced keys on top."""
    type_path = _type_path(context)
    shared: dict[str, object] = {}
    own: dict[str, object] = {}
    for key, value in context_as_mapping(context).items():
        prefix, name = _split_key(key, subagent_names)
        if prefix is None:
            shared[name] = value
        elif prefix == subagent:
            own[name] = value
    values: dict[str, JsonValue] = {}
    secrets: dict[str, SecretStr] = {}
    secret_str_keys: list[str] = []
    for key, value in {**shared, **own}.items():
        if isinstance(value, SecretStr):
            secrets[key] = value
            secret_str_keys.append(key)
        elif key in secret_keys:
            if not isinstance(value, str):
                raise ContextError(
                    f"runtime context key {key!r} is listed as secret and must be a string, "
                    f"not {type(value).__name__}"
                )
            secrets[key] = SecretStr(value)
        else:
            values[key] = _checked_json(key, value)
    return SubagentContext(values, secrets, tuple(secret_str_keys), type_path)


def rebuild_context(
    values: Mapping[str, JsonValue],
    secrets: Mapping[str, SecretStr],
    secret_str_keys: Iterable[str],
    type_path: str | None = None,
) -> object:
    """The worker-side context: secrets come back in the type the caller passed them, and a
    typed context as an instance of its class (`type_path`), built from the slice."""
    as_secret = set(secret_str_keys)
    rebuilt: dict[str, Any] = dict(values)
    for key, secret in secrets.items():
        rebuilt[key] = secret if key in as_secret else secret.get_secret_value()
    if type_path is None:
        return rebuilt
    try:
        cls = import_object(type_path)
    except RegistryError as error:
        raise ContextError(f"cannot rebuild the runtime context as {type_path}: {error}") from None
    if not _is_typed(cls):
        raise ContextError(f"runtime context type {type_path} is neither a dataclass nor a pydantic model")
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        # By field name, as `context_as_mapping` read it, whatever the fields' aliases.
        return cls.model_validate(rebuilt, by_name=True)
    # A dataclass takes its `init` fields; the others are its own to compute again.
    accepted = {field.name for field in dataclasses.fields(cls) if field.init}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in rebuilt.items() if key in accepted})  # type: ignore[operator]


def redact(text: str, secret_values: Iterable[str]) -> str:
    """Scrub secret values from text that leaves the worker (reports, error messages)."""
    for value in sorted(set(secret_values), key=len, reverse=True):
        if value:
            text = text.replace(value, REDACTED)
    return text
