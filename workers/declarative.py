"""A declarative subagent spec, completed by deepagents' own `create_deep_agent`.

deepagents completes each declarative spec inside `create_deep_agent`: what it takes from the
main agent, its model's harness profile (prompt suffix, tool descriptions, extra or excluded
middleware), filesystem and summarization, skills, prompt caching, approvals from permission
rules. It hands the results to `SubAgentMiddleware`, and there is no public way to ask for
them. Rewriting that code here would drift from deepagents with each release; instead the
worker calls `create_deep_agent` with the spec and the main agent's arguments that travelled
(`Inherited`), and takes the completed spec where `SubAgentMiddleware` receives it, stopping the
build there: nothing else is compiled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import deepagents.graph
from deepagents import create_deep_agent
from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from langchain_core.language_models import BaseChatModel

from shared.models import make_model
from shared.registry import MODEL_OPTIONS_KEY, TASKFORCE_KEYS, general_purpose_spec, import_object
from shared.schemas import Inherited

ModelArguments = Callable[[str, Mapping[str, Any] | None], dict[str, Any]]


class _Completed(Exception):  # noqa: N818 - a result carried out of create_deep_agent, not an error
    def __init__(self, subagents: Sequence[SubAgent]) -> None:
        super().__init__("the completed subagent specs")
        self.subagents = list(subagents)


class _TakeCompletedSpecs:
    """Stands in for `SubAgentMiddleware` while `create_deep_agent` runs."""

    def __init__(self, *, subagents: Sequence[SubAgent], **_: Any) -> None:
        raise _Completed(subagents)


_SWAP = threading.Lock()
_SLOT = "SubAgentMiddleware"
"""The name `create_deep_agent` finds the middleware by, in its own module."""


def no_arguments(model: str, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """For a worker whose settings give models no client arguments."""
    return dict(own or {})


def completed_spec(
    spec: SubAgent,
    inherited: Inherited,
    default_model: str | BaseChatModel,
    backend: BackendProtocol,
    model_arguments: ModelArguments = no_arguments,
) -> SubAgent:
    """`spec` as `create_deep_agent` would run it under a main agent with `inherited`'s
    arguments (the default general-purpose spec: deepagents' own general-purpose subagent).
    `model_arguments` gives a model string its client arguments (`Settings.model_arguments`);
    the spec's `model_options` go to whichever model the subagent runs on."""
    own: dict[str, Any] = {key: value for key, value in spec.items() if key not in TASKFORCE_KEYS}
    own_options = cast(dict[str, Any], spec).get(MODEL_OPTIONS_KEY)
    if isinstance(own.get("model"), str):
        own["model"] = make_model(own["model"], model_arguments(own["model"], own_options))
    if inherited.model_path is not None:
        main_model: object = import_object(inherited.model_path)
    else:
        chosen = inherited.model or default_model
        inherits = "model" not in own
        main_model = make_model(
            chosen,
            model_arguments(chosen, own_options if inherits else None) if isinstance(chosen, str) else None,
        )
    rules = [FilesystemPermission(**rule) for rule in inherited.permissions or []]  # type: ignore[arg-type]
    arguments: dict[str, Any] = {
        "tools": [import_object(path) for path in inherited.tools] if inherited.tools is not None else None,
        "subagents": [] if spec == general_purpose_spec() else [own],
        "skills": inherited.skills,
        "permissions": rules if inherited.permissions is not None else None,
        "interrupt_on": inherited.interrupt_on,
        "backend": backend,
    }
    with _SWAP:
        original = getattr(deepagents.graph, _SLOT)
        setattr(deepagents.graph, _SLOT, _TakeCompletedSpecs)
        try:
            create_deep_agent(cast(BaseChatModel, main_model), **arguments)
        except _Completed as completed:
            return next(found for found in completed.subagents if found["name"] == spec["name"])
        finally:
            setattr(deepagents.graph, _SLOT, original)
    raise RuntimeError("create_deep_agent built no subagents: this deepagents version is not supported")
