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
from collections.abc import Sequence
from typing import Any, cast

import deepagents.graph
from deepagents import create_deep_agent
from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from langchain_core.language_models import BaseChatModel

from shared.models import make_model
from shared.registry import TASKFORCE_KEYS, general_purpose_spec, import_object
from shared.schemas import Inherited


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


def completed_spec(
    spec: SubAgent, inherited: Inherited, default_model: str | BaseChatModel, backend: BackendProtocol
) -> SubAgent:
    """`spec` as `create_deep_agent` would run it under a main agent with `inherited`'s
    arguments (the default general-purpose spec: deepagents' own general-purpose subagent)."""
    own: dict[str, Any] = {key: value for key, value in spec.items() if key not in TASKFORCE_KEYS}
    if isinstance(own.get("model"), str):
        own["model"] = make_model(own["model"])  # `offline`, and OpenAI-compatible servers
    main_model = (
        import_object(inherited.model_path)
        if inherited.model_path is not None
        else make_model(inherited.model or default_model)
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
