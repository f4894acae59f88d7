"""Build a runnable subagent from a registry spec, with the stack deepagents gives declarative
subagents: filesystem tools on the shared files, summarization, patch-tool-calls, skills and
AGENTS.md memory, then the spec's own middleware (replacing same-named entries, as deepagents
does).

Skills and memory are read from the shared files at the start of every delegation, never baked
into the compiled graph: editing `/skills/` or `/memories/AGENTS.md` changes every worker's next
run without a redeploy.

What the spec leaves out, the main agent's arguments fill in as deepagents would (`Inherited`,
sent with each delegation). A subagent that can pause for approval (its `interrupt_on`, or a
permission rule with `mode="interrupt"`) gets the paused-runs checkpointer; others get none."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from deepagents.backends.protocol import BackendProtocol

# The two helpers deepagents' graph.py uses to turn permission rules into approvals: calling
# them keeps taskforce's approvals exactly deepagents' (private, so pinned with deepagents).
from deepagents.graph import _merge_fs_interrupt_on
from deepagents.middleware._fs_interrupt import _build_interrupt_on_from_permissions
from deepagents.middleware.filesystem import FilesystemMiddleware, FilesystemPermission
from deepagents.middleware.memory import MemoryMiddleware
from deepagents.middleware.patch_tool_calls import PatchToolCallsMiddleware
from deepagents.middleware.skills import SkillsMiddleware
from deepagents.middleware.subagents import SubAgent, create_sub_agent
from deepagents.middleware.summarization import create_summarization_middleware
from langchain.agents.middleware.types import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver

from shared.models import make_model
from shared.registry import MEMORY_KEY, TASKFORCE_KEYS, import_object
from shared.schemas import Inherited
from shared.spec_digest import differing_fields, spec_digests


def _merge_by_name(
    base: list[AgentMiddleware[Any, Any, Any]], custom: Sequence[AgentMiddleware[Any, Any, Any]]
) -> list[AgentMiddleware[Any, Any, Any]]:
    replacements = {m.name: m for m in custom}
    merged = [replacements.pop(m.name, m) for m in base]
    return merged + [m for m in custom if m.name in replacements]


def with_inherited(spec: SubAgent, inherited: Inherited) -> SubAgent:
    """The spec as deepagents completes it from the main agent's arguments."""
    completed: dict[str, Any] = dict(spec)
    if inherited.interrupt_on is not None:
        completed["interrupt_on"] = inherited.interrupt_on
    if inherited.permissions is not None:
        completed["permissions"] = [FilesystemPermission(**rule) for rule in inherited.permissions]  # type: ignore[arg-type]
    if inherited.tools is not None:
        completed["tools"] = [import_object(path) for path in inherited.tools]
    if inherited.model is not None:
        completed["model"] = inherited.model
    if inherited.model_path is not None:
        completed["model"] = import_object(inherited.model_path)
    if inherited.skills is not None:
        completed["skills"] = inherited.skills
    return cast(SubAgent, completed)


@dataclass(frozen=True)
class Subagent:
    graph: Runnable[Any, Any]
    paused_runs: BaseCheckpointSaver[str] | None = None
    """The checkpointer it was compiled with, if it may stop for human approval."""


def build_subagent(
    spec: SubAgent,
    default_model: str | BaseChatModel,
    backend: BackendProtocol,
    paused_runs: BaseCheckpointSaver[str] | None = None,
) -> Subagent:
    model = make_model(spec.get("model", default_model))
    permissions = spec.get("permissions")
    approvals = _merge_fs_interrupt_on(
        _build_interrupt_on_from_permissions(permissions or [], backend), spec.get("interrupt_on")
    )
    if approvals and paused_runs is None:
        raise ValueError(f"subagent {spec['name']!r} may pause for approval, and nothing can keep it paused")
    stack: list[AgentMiddleware[Any, Any, Any]] = [
        FilesystemMiddleware(backend=backend, permissions=permissions),
        create_summarization_middleware(model, backend),
        PatchToolCallsMiddleware(),
    ]
    skills = spec.get("skills")
    if skills:
        stack.append(SkillsMiddleware(backend=backend, sources=skills))
    memory = cast(dict[str, Any], spec).get(MEMORY_KEY)
    if memory:
        stack.append(MemoryMiddleware(backend=backend, sources=list(memory)))
    resolved = cast(
        SubAgent,
        {
            **{key: value for key, value in spec.items() if key not in TASKFORCE_KEYS},
            "model": model,
            "tools": list(spec.get("tools", [])),
            "middleware": _merge_by_name(stack, spec.get("middleware", [])),
            **({"interrupt_on": approvals} if approvals else {}),
        },
    )
    graph = create_sub_agent(resolved)
    if approvals:
        graph.checkpointer = paused_runs  # type: ignore[attr-defined]
    return Subagent(graph, paused_runs if approvals else None)


class SpecMismatchError(LookupError):
    """The worker's spec of a subagent is not the one the orchestrator offered."""


class SubagentCache:
    """Compiled subagents by type: compiling costs far more than a small delegation, and a
    compiled graph is safe to run many times at once."""

    def __init__(
        self,
        specs: Sequence[SubAgent],
        default_model: str | BaseChatModel,
        backend: BackendProtocol,
        paused_runs: BaseCheckpointSaver[str] | None = None,
    ):
        self._specs = {spec["name"]: spec for spec in specs}
        self._digests = {name: spec_digests(spec) for name, spec in self._specs.items()}
        self._default_model = default_model
        self._backend = backend
        self._paused_runs = paused_runs
        self._built: dict[tuple[str, str], Subagent] = {}
        self._lock = threading.Lock()

    def get(
        self, name: str, expected: Mapping[str, str] | None = None, inherited: Inherited | None = None
    ) -> Subagent:
        """`expected`: the spec digests the orchestrator sent; a worker whose spec differs
        refuses rather than run another subagent than the one offered. `inherited`: what the
        main agent's arguments add to the spec; each combination is compiled once."""
        inherited = inherited or Inherited()
        if expected and name in self._digests:
            differing = differing_fields(expected, self._digests[name])
            if differing:
                raise SpecMismatchError(
                    f"this worker's spec of subagent {name!r} differs from the orchestrator's in "
                    f"{', '.join(differing)}; give the orchestrator and every worker the same "
                    "TASKFORCE_SUBAGENTS registry"
                )
        key = (name, inherited.model_dump_json())
        with self._lock:
            if key not in self._built:
                if name not in self._specs:
                    raise LookupError(
                        f"this worker has no subagent {name!r}; it knows: {', '.join(self._specs)}. "
                        "Start workers with the same TASKFORCE_SUBAGENTS as the orchestrator."
                    )
                spec = with_inherited(self._specs[name], inherited)
                self._built[key] = build_subagent(spec, self._default_model, self._backend, self._paused_runs)
            return self._built[key]
