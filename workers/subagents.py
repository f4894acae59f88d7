"""Build a runnable subagent from a registry spec, with the stack deepagents gives declarative
subagents: filesystem tools on the shared files, summarization, patch-tool-calls, skills and
AGENTS.md memory, then the spec's own middleware (replacing same-named entries, as deepagents
does).

Skills and memory are read from the shared files at the start of every delegation, never baked
into the compiled graph: editing `/skills/` or `/memories/AGENTS.md` changes every worker's next
run without a redeploy."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.filesystem import FilesystemMiddleware
from deepagents.middleware.memory import MemoryMiddleware
from deepagents.middleware.patch_tool_calls import PatchToolCallsMiddleware
from deepagents.middleware.skills import SkillsMiddleware
from deepagents.middleware.subagents import SubAgent, create_sub_agent
from deepagents.middleware.summarization import create_summarization_middleware
from langchain.agents.middleware.types import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from shared.models import make_model
from shared.registry import MEMORY_KEY, TASKFORCE_KEYS
from shared.spec_digest import differing_fields, spec_digests


def _merge_by_name(
    base: list[AgentMiddleware[Any, Any, Any]], custom: Sequence[AgentMiddleware[Any, Any, Any]]
) -> list[AgentMiddleware[Any, Any, Any]]:
    replacements = {m.name: m for m in custom}
    merged = [replacements.pop(m.name, m) for m in base]
    return merged + [m for m in custom if m.name in replacements]


def build_subagent(
    spec: SubAgent, default_model: str | BaseChatModel, backend: BackendProtocol
) -> Runnable[Any, Any]:
    model = make_model(spec.get("model", default_model))
    stack: list[AgentMiddleware[Any, Any, Any]] = [
        FilesystemMiddleware(backend=backend, permissions=spec.get("permissions")),
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
        },
    )
    return create_sub_agent(resolved)


class SpecMismatchError(LookupError):
    """The worker's spec of a subagent is not the one the orchestrator offered."""


class SubagentCache:
    """Compiled subagents by type: compiling costs far more than a small delegation, and a
    compiled graph is safe to run many times at once."""

    def __init__(
        self, specs: Sequence[SubAgent], default_model: str | BaseChatModel, backend: BackendProtocol
    ):
        self._specs = {spec["name"]: spec for spec in specs}
        self._digests = {name: spec_digests(spec, default_model) for name, spec in self._specs.items()}
        self._default_model = default_model
        self._backend = backend
        self._built: dict[str, Runnable[Any, Any]] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str, expected: Mapping[str, str] | None = None) -> Runnable[Any, Any]:
        """`expected`: the spec digests the orchestrator sent; a worker whose spec differs
        refuses rather than run another subagent than the one offered."""
        if expected and name in self._digests:
            differing = differing_fields(expected, self._digests[name])
            if differing:
                raise SpecMismatchError(
                    f"this worker's spec of subagent {name!r} differs from the orchestrator's in "
                    f"{', '.join(differing)}; give the orchestrator and every worker the same "
                    "TASKFORCE_SUBAGENTS registry and TASKFORCE_MODEL"
                )
        with self._lock:
            if name not in self._built:
                if name not in self._specs:
                    raise LookupError(
                        f"this worker has no subagent {name!r}; it knows: {', '.join(self._specs)}. "
                        "Start workers with the same TASKFORCE_SUBAGENTS as the orchestrator."
                    )
                self._built[name] = build_subagent(self._specs[name], self._default_model, self._backend)
            return self._built[name]
