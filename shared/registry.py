"""The subagent registry: deepagents-style subagent dicts found by import path.

Workers cannot receive tools or models over the wire, so both sides import the same list,
`"package.module:NAME"`, and existing deepagents specs work unchanged.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, cast

from deepagents.middleware.subagents import (
    DEFAULT_GENERAL_PURPOSE_DESCRIPTION,
    DEFAULT_SUBAGENT_PROMPT,
    SubAgent,
)
from pydantic import TypeAdapter, ValidationError

from shared.model_limits import ModelLimit, check_bucket_name

GENERAL_PURPOSE = "general-purpose"
MEMORY_KEY = "memory"
"""taskforce's addition to deepagents' spec keys: AGENTS.md paths the subagent loads, as
`create_deep_agent(memory=...)` does for a main agent."""
QUEUE_KEY = "queue"
"""The other addition: the queue the subagent's delegations go to, `<prefix>.<queue>`; unset,
its own name. Subagents that share a queue share the workers that consume it (`-Q`)."""
MODEL_OPTIONS_KEY = "model_options"
"""And the client arguments of the model the subagent runs on (`max_retries`, `timeout`,
`base_url`, ...), over those `TASKFORCE_MODEL_OPTIONS` gives that model string."""
MODEL_LIMITS_KEY = "model_limits"
"""And limits of the subagent type's own, in `TASKFORCE_MODEL_LIMITS`'s form: its model calls
count into these buckets as well as into the pool's, so a type can be held to a share."""
TASKFORCE_KEYS = frozenset({MEMORY_KEY, QUEUE_KEY, MODEL_OPTIONS_KEY, MODEL_LIMITS_KEY})
_KNOWN_KEYS = frozenset(SubAgent.__annotations__) | TASKFORCE_KEYS
_LIMITS = TypeAdapter(dict[str, ModelLimit])
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_UNSUPPORTED = {
    "runnable": "compiled subagents cannot be rebuilt on a worker; give a declarative spec",
    "graph_id": "async (remote) subagents are not sent through taskforce; pass them to create_orchestrator",
}


class RegistryError(ValueError):
    """The registry cannot be loaded or holds a spec that cannot run on workers."""


def import_object(path: str) -> object:
    module_name, separator, attribute = path.partition(":")
    if not separator or not module_name or not attribute:
        raise RegistryError(f"registry path {path!r} must look like 'package.module:NAME'")
    # Like `celery -A`, look in the working directory too: console scripts leave it off sys.path.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RegistryError(
            f"cannot import module {module_name!r} for registry {path!r}: {error}{_shadowed(module_name)}"
        ) from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise RegistryError(
            f"module {module_name!r} has no attribute {attribute!r}{_shadowed(module_name)}"
        ) from None


OWN_PACKAGES = frozenset({"orchestrator", "workers", "shared", "taskforce_demo"})
"""taskforce's top-level packages (ARCHITECTURE.md says why there is no single `taskforce` one)."""


def _shadowed(module_name: str) -> str:
    """A user's package named like one of taskforce's is hidden by it: say so, not 'not found'."""
    top = module_name.partition(".")[0]
    if top not in OWN_PACKAGES:
        return ""
    return (
        f" ({top!r} is one of taskforce's own packages, which hides a package of yours by that name: "
        "rename yours)"
    )


def import_path_of(value: object) -> str | None:
    """Where a worker imports this very object from (`import_object`'s inverse): a module-level
    name holding it, its defining module first. `None` if no importable module holds it."""
    preferred = getattr(getattr(value, "func", value), "__module__", None)
    modules = [sys.modules[preferred]] if preferred in sys.modules else []
    for module in [*modules, *list(sys.modules.values())]:
        name = getattr(module, "__name__", "__main__")
        if name == "__main__" or name.startswith("_"):
            continue  # workers import modules by name; `__main__` is another program there
        for attribute, held in list(vars(module).items()):
            if held is value:
                return f"{name}:{attribute}"
    return None


def validate_specs(specs: object) -> list[SubAgent]:
    """Check the specs the way a worker will need them, so mistakes surface at start-up."""
    if isinstance(specs, dict) or not isinstance(specs, Sequence) or isinstance(specs, str):
        raise RegistryError(f"a registry must be a list of subagent dicts, not {type(specs).__name__}")
    seen: set[str] = set()
    checked: list[SubAgent] = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise RegistryError(f"registry entry {index} is a {type(spec).__name__}, not a dict")
        for key, reason in _UNSUPPORTED.items():
            if key in spec:
                raise RegistryError(f"registry entry {index} ({spec.get('name')!r}): {reason}")
        for key in ("name", "description"):
            if not isinstance(spec.get(key), str) or not spec[key].strip():
                raise RegistryError(f"registry entry {index} needs a non-empty string {key!r}")
        unknown = sorted(set(spec) - _KNOWN_KEYS)
        if unknown:
            raise RegistryError(f"subagent {spec['name']!r} has unknown keys {unknown}")
        _check_own_keys(spec)
        if spec["name"] in seen:
            raise RegistryError(f"subagent name {spec['name']!r} appears twice in the registry")
        seen.add(spec["name"])
        checked.append(cast(SubAgent, spec))
    return checked


def _check_own_keys(spec: dict[str, Any]) -> None:
    """taskforce's own keys, which deepagents knows nothing of and would not check."""
    name = spec["name"]
    memory = spec.get(MEMORY_KEY, [])
    paths_ok = isinstance(memory, list | tuple) and all(str(p).startswith("/") for p in memory)
    if not paths_ok or not all(isinstance(p, str) for p in memory):
        raise RegistryError(f"subagent {name!r}: {MEMORY_KEY!r} must be a list of absolute paths")
    queue = spec.get(QUEUE_KEY, name)
    if not isinstance(queue, str) or not _QUEUE_NAME.fullmatch(queue):
        raise RegistryError(
            f"subagent {name!r}: {QUEUE_KEY!r} must be a name of letters, digits, '_', '.', '-'"
        )
    options = spec.get(MODEL_OPTIONS_KEY, {})
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise RegistryError(f"subagent {name!r}: {MODEL_OPTIONS_KEY!r} must be a dict of arguments")
    try:
        spec_model_limits(spec)
    except (ValidationError, ValueError, TypeError) as error:
        raise RegistryError(f"subagent {name!r}: {MODEL_LIMITS_KEY!r}: {_first_problem(error)}") from None
    if options and not isinstance(spec.get("model", ""), str):
        raise RegistryError(
            f"subagent {name!r}: {MODEL_OPTIONS_KEY!r} configures a model built from a string, and its "
            "'model' is an object already built: give the arguments to that object instead"
        )


def spec_model_limits(spec: Mapping[str, Any]) -> dict[str, ModelLimit]:
    """The spec's own limits (`MODEL_LIMITS_KEY`), checked as the setting's are."""
    limits = _LIMITS.validate_python(spec.get(MODEL_LIMITS_KEY, {}))
    for bucket in limits:
        check_bucket_name(bucket)
    return limits


def _first_problem(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problem = error.errors(include_url=False, include_input=False)[0]
        return ": ".join(
            [".".join(map(str, problem["loc"])), problem["msg"]] if problem["loc"] else [problem["msg"]]
        )
    return str(error)


def queue_name(spec: SubAgent) -> str:
    """The part of the queue name after `<prefix>.`, for this subagent's delegations."""
    return str(cast(dict[str, Any], spec).get(QUEUE_KEY) or spec["name"])


def load_registry(path: str | None) -> list[SubAgent]:
    """The specs at `path`; no path means no custom subagents."""
    if path is None:
        return []
    return validate_specs(import_object(path))


def general_purpose_spec(tools: Sequence[Any] = ()) -> SubAgent:
    """deepagents' default general-purpose subagent, for registries that do not define one."""
    return {
        "name": GENERAL_PURPOSE,
        "description": DEFAULT_GENERAL_PURPOSE_DESCRIPTION,
        "system_prompt": DEFAULT_SUBAGENT_PROMPT,
        "tools": list(tools),
    }


def effective_specs(specs: Sequence[SubAgent], *, general_purpose: bool) -> list[SubAgent]:
    """The subagent types offered: the registry plus general-purpose, unless turned off or
    overridden by a spec of the same name (as in deepagents)."""
    if not general_purpose or any(spec["name"] == GENERAL_PURPOSE for spec in specs):
        return list(specs)
    return [general_purpose_spec(), *specs]
