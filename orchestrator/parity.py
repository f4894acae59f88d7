"""What `create_orchestrator` refuses at build time, because deepagents would do it and workers
on other machines cannot yet: never a silent difference, always an error naming the argument.

Each check mirrors a line of `create_deep_agent` (deepagents' graph.py): what a declarative
subagent inherits from the main agent when its spec leaves it out (`interrupt_on`,
`permissions`, `tools`), what the general-purpose subagent takes from the main agent (model,
tools, skills), and the arguments that reach subagents in one process (`backend`, `store`,
a typed `context_schema`). What taskforce does support travels or is rebuilt on the worker;
the rest is listed here until it does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from langchain.agents.middleware import InterruptOnConfig
from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from shared.files.workspace import RunBackend
from shared.models import is_offline
from shared.registry import GENERAL_PURPOSE, general_purpose_spec

_NO_APPROVAL_ON_WORKERS = "workers cannot pause a subagent for human approval yet"


class UnsupportedArgumentError(ValueError):
    """An argument deepagents would honour in a subagent that taskforce's workers cannot."""


def _is_default_general_purpose(spec: SubAgent) -> bool:
    return spec["name"] == GENERAL_PURPOSE and spec == general_purpose_spec()


def _check_specs(
    offered: Sequence[SubAgent],
    interrupt_on: dict[str, bool | InterruptOnConfig] | None,
    permissions: list[FilesystemPermission] | None,
    tools: Sequence[Any] | None,
) -> None:
    approvals = sorted(name for name, wanted in (interrupt_on or {}).items() if wanted and name != "task")
    for spec in offered:
        name = spec["name"]
        if spec.get("mode") == "fork":
            raise UnsupportedArgumentError(
                f"subagent {name!r}: mode='fork' is not supported, the parent's messages do not travel "
                "to workers; remove it to run the subagent from a fresh context"
            )
        if spec.get("interrupt_on"):
            raise UnsupportedArgumentError(f"subagent {name!r}: interrupt_on: {_NO_APPROVAL_ON_WORKERS}")
        if approvals and "interrupt_on" not in spec:
            raise UnsupportedArgumentError(
                f"interrupt_on={approvals}: deepagents applies it to subagent {name!r} too, and "
                f"{_NO_APPROVAL_ON_WORKERS}; keep interrupt_on to 'task' (approving delegations)"
            )
        rules = spec.get("permissions", permissions) or []
        if any(rule.mode == "interrupt" for rule in rules):
            raise UnsupportedArgumentError(
                f"permissions: a rule with mode='interrupt' reaches subagent {name!r}, "
                f"and {_NO_APPROVAL_ON_WORKERS}"
            )
        if permissions and "permissions" not in spec:
            raise UnsupportedArgumentError(
                f"permissions: deepagents applies them to subagent {name!r} too, which has none of its "
                "own; give its spec the same 'permissions' (workers apply a spec's rules)"
            )
        if tools and "tools" not in spec and not _is_default_general_purpose(spec):
            raise UnsupportedArgumentError(
                f"tools: deepagents gives them to subagent {name!r}, whose spec lists none; give its "
                "spec a 'tools' list (workers import them with the registry)"
            )


def _check_general_purpose(
    offered: Sequence[SubAgent],
    model: str | BaseChatModel,
    worker_model: str,
    tools: Sequence[Any] | None,
    skills: list[str] | None,
) -> None:
    if not any(_is_default_general_purpose(spec) for spec in offered):
        return
    remedy = "define a 'general-purpose' spec in the registry, or set TASKFORCE_GENERAL_PURPOSE=false"
    if isinstance(model, str) and model != worker_model:
        raise UnsupportedArgumentError(
            f"model={model!r}: deepagents runs the general-purpose subagent on the main agent's model, "
            f"workers on TASKFORCE_MODEL={worker_model!r}; make them the same, or {remedy}"
        )
    if is_offline(worker_model) and not is_offline(model):
        # The model object cannot travel; the stand-in must not answer for it in silence.
        raise UnsupportedArgumentError(
            "model: deepagents runs the general-purpose subagent on the main agent's model, workers on "
            f"TASKFORCE_MODEL, which is 'offline'; set it to the main agent's model, or {remedy}"
        )
    if tools:
        raise UnsupportedArgumentError(
            f"tools: deepagents gives the main agent's tools to the general-purpose subagent; {remedy}"
        )
    if skills:
        raise UnsupportedArgumentError(
            f"skills: deepagents gives the main agent's skills to the general-purpose subagent; {remedy}"
        )


def _check_arguments(backend: object, store: object, context_schema: object) -> None:
    if backend is not None and not isinstance(backend, RunBackend):
        raise UnsupportedArgumentError(
            "backend: deepagents gives it to subagents too, and workers reach only the shared files; "
            "route the paths with TASKFORCE_FILES_ROUTES or leave backend unset"
        )
    if store is not None:
        raise UnsupportedArgumentError(
            "store: deepagents passes it to subagents' tools (runtime.store), which on workers is None; "
            "keep long-term memory in the shared files' /memories/ instead"
        )
    if isinstance(context_schema, type) and (
        dataclasses.is_dataclass(context_schema) or issubclass(context_schema, BaseModel)
    ):
        raise UnsupportedArgumentError(
            f"context_schema={context_schema.__name__}: subagents on workers would get the context as "
            "a dict, not as this type; use a TypedDict"
        )


def refuse_what_workers_cannot_do(
    offered: Sequence[SubAgent],
    *,
    model: str | BaseChatModel,
    worker_model: str,
    tools: Sequence[Any] | None,
    skills: list[str] | None,
    interrupt_on: dict[str, bool | InterruptOnConfig] | None,
    permissions: list[FilesystemPermission] | None,
    backend: object,
    store: object,
    context_schema: object,
) -> None:
    _check_specs(offered, interrupt_on, permissions, tools)
    _check_general_purpose(offered, model, worker_model, tools, skills)
    _check_arguments(backend, store, context_schema)
