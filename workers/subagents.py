"""Build a runnable subagent from a registry spec, exactly as deepagents builds a declarative
subagent (`workers.declarative`): its model's harness profile, filesystem tools on the shared
files, summarization, skills, approvals, and what the spec leaves out taken from the main agent
(`Inherited`, sent with each delegation). taskforce adds AGENTS.md `memory` for a subagent.

Skills and memory are read from the shared files at the start of every delegation, never baked
into the compiled graph: editing `/skills/` or `/memories/AGENTS.md` changes every worker's next
run without a redeploy. A subagent that can pause for approval (its `interrupt_on`, or a
permission rule with `mode="interrupt"`) gets the paused-runs checkpointer; others get none.
A subagent whose main agent has the shared store gets the worker's copy of it, as deepagents
gives the main agent's store to subagents' tools (`runtime.store`). Its model calls are guarded
(`shared.guarded_model`): the pool's limits, the provider's retries."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.memory import MemoryMiddleware
from deepagents.middleware.subagents import SubAgent, create_sub_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from shared.compat.deepagents import settle_tool_descriptions
from shared.files.layout import rebuild
from shared.files.workspace import SharedFiles
from shared.guarded_model import NO_LIMITS, ModelGuard, guarded
from shared.model_limits import ModelLimit
from shared.registry import MEMORY_KEY, spec_model_limits
from shared.schemas import BackendLayout, Inherited
from shared.spec_digest import differing_fields, spec_digests
from workers.declarative import ModelArguments, completed_spec, no_arguments


@dataclass(frozen=True)
class Subagent:
    graph: Runnable[Any, Any]
    paused_runs: BaseCheckpointSaver[str] | None = None
    """The checkpointer it was compiled with, if it may stop for human approval."""
    sync: bool = False
    """Nothing of it has an async implementation of its own: it runs step by step on a thread
    (`workers.stepwise`) instead of on the process's event loop."""


_HOOKS = ("before_agent", "before_model", "wrap_model_call", "wrap_tool_call", "after_model", "after_agent")


def _overrides(owner: type, name: str, base: type) -> bool:
    return getattr(owner, name, None) is not getattr(base, name, None)


def is_sync(model: object, tools: Sequence[object], middleware: Sequence[AgentMiddleware]) -> bool:
    """Whether a subagent would run exactly as it does under `ainvoke` if run under `invoke`:
    its model has no async client (a provider's does, and keeps it on the process's loop), no
    tool of the spec has a coroutine (one given both would run its other function), and every
    middleware hook it has in async form it also has in sync form (deepagents' all do)."""
    if not isinstance(model, BaseChatModel):
        return False
    base: type = getattr(type(model), "taskforce_base", type(model))
    if _overrides(base, "_agenerate", BaseChatModel) or _overrides(base, "_astream", BaseChatModel):
        return False
    for tool in tools:
        if getattr(tool, "coroutine", None) is not None:
            return False
        own_async = isinstance(tool, BaseTool) and _overrides(type(tool), "_arun", BaseTool)
        if own_async and not hasattr(tool, "func"):
            return False
    return not any(
        _overrides(type(found), f"a{hook}", AgentMiddleware)
        and not _overrides(type(found), hook, AgentMiddleware)
        for found in middleware
        for hook in _HOOKS
    )


def build_subagent(
    spec: SubAgent,
    default_model: str | BaseChatModel,
    backend: BackendProtocol,
    inherited: Inherited | None = None,
    paused_runs: BaseCheckpointSaver[str] | None = None,
    *,
    store: BaseStore | None = None,
    model_arguments: ModelArguments = no_arguments,
    guard: ModelGuard = NO_LIMITS,
) -> Subagent:
    inherited = inherited or Inherited()
    completed: dict[str, Any] = dict(completed_spec(spec, inherited, default_model, backend, model_arguments))
    if isinstance(completed.get("model"), BaseChatModel):
        # In place: summarization holds the same object, and its calls count too.
        guarded(completed["model"], guard)
    memory = cast(dict[str, Any], spec).get(MEMORY_KEY)
    if memory:
        completed["middleware"] = [
            *completed["middleware"],
            MemoryMiddleware(backend=backend, sources=list(memory)),
        ]
    pauses = bool(completed.get("interrupt_on"))
    if pauses and paused_runs is None:
        raise ValueError(f"subagent {spec['name']!r} may pause for approval, and nothing can keep it paused")
    if inherited.store and store is None:
        raise ValueError(
            f"subagent {spec['name']!r} is to get the main agent's store, and this worker has no store"
        )
    settle_tool_descriptions(completed["middleware"])
    sync = is_sync(completed.get("model"), completed.get("tools") or [], completed["middleware"])
    graph = create_sub_agent(cast(SubAgent, completed))
    if pauses:
        graph.checkpointer = paused_runs  # type: ignore[attr-defined]
    if inherited.store:
        # Where deepagents' subagent finds the parent's store in its runtime; a worker has no
        # parent graph, so the compiled subagent carries it.
        graph.store = store  # type: ignore[attr-defined]
    return Subagent(graph, paused_runs if pauses else None, sync=sync)


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
        *,
        store: BaseStore | None = None,
        model_arguments: ModelArguments = no_arguments,
        guard: ModelGuard = NO_LIMITS,
        files: SharedFiles | None = None,
    ):
        """`backend`: the subagents' files when the main agent gave no `backend=` of its own;
        `files`: where the run's workspace is for one it did (`shared.files.layout`)."""
        self._specs = {spec["name"]: spec for spec in specs}
        self._model_limits = {name: spec_model_limits(spec) for name, spec in self._specs.items()}
        self._guard = guard
        self._digests = {name: spec_digests(spec) for name, spec in self._specs.items()}
        self._default_model = default_model
        self._backend = backend
        self._files = files
        self._paused_runs = paused_runs
        self._store = store
        self._model_arguments = model_arguments
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
                self._built[key] = build_subagent(
                    self._specs[name],
                    self._default_model,
                    self._backend_for(inherited.backend),
                    inherited,
                    self._paused_runs,
                    store=self._store,
                    model_arguments=self._model_arguments,
                    guard=self._guard,
                )
            return self._built[key]

    def _backend_for(self, layout: BackendLayout | None) -> BackendProtocol:
        if layout is None:
            return self._backend
        if self._files is None:
            raise ValueError("the main agent has a backend of its own, and this worker has no shared files")
        return rebuild(layout, self._files)

    def model_limits(self, name: str) -> dict[str, ModelLimit]:
        """The subagent type's own limits (its spec's `model_limits`), over the pool's."""
        return self._model_limits.get(name, {})
