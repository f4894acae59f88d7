"""How a tool call becomes a `Delegation`: its id, its slice of the runtime context, its limits,
and the spec, queue and inherited fields of the subagent type it goes to.

One builder serves every tool that sends work to the pools (the `task` tool and the async-task
tools), so a subagent type is sent the same way whichever tool sends it, and the runtime
context is namespaced by the same subagent names everywhere.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig

from shared.context import context_for
from shared.schemas import BudgetRef, Delegation, Inherited
from shared.settings import Settings
from shared.tracing import caller_run

STAND_IN_THREAD_ID_KEY = "taskforce_stand_in_thread_id"
"""Graph state key: what stands in for the thread id in delegation ids when the run has none (set by
the `task` middleware's `before_agent`); without it, two runs whose models reuse tool call ids
would share delegations."""
DEFAULT_RECURSION_LIMIT = 1000
BudgetRefs = Callable[[RunnableConfig, Mapping[str, Any]], tuple[BudgetRef, ...]]
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")


@dataclass(frozen=True)
class Route:
    """What a delegation to one subagent type carries besides its task: the queue its spec
    names (unset: its own name), the digests of the spec as the orchestrator offered it, which
    workers check theirs against, and what it inherits from the main agent."""

    queue: str | None = None
    digests: Mapping[str, str] = field(default_factory=dict)
    inherited: Inherited = field(default_factory=Inherited)


class DelegationBuilder:
    """Builds the delegations of one main agent, for the subagent types it may send to."""

    def __init__(
        self,
        settings: Settings,
        routes: Mapping[str, Route],
        budget_refs: BudgetRefs = lambda config, state: (),
        store_namespaces: Callable[[], dict[str, tuple[str, ...]]] = dict,
    ) -> None:
        """`budget_refs`: the budgets a run's delegations spend from (`orchestrator.budgets`);
        `store_namespaces`: the namespaces of the main agent's `StoreBackend` parts, for the
        running graph (`orchestrator.backends`)."""
        self.settings = settings
        self._routes = dict(routes)
        self._budget_refs = budget_refs
        self._store_namespaces = store_namespaces

    @property
    def names(self) -> list[str]:
        """Every subagent type a delegation may go to: the namespaces of the runtime context."""
        return list(self._routes)

    def build(
        self,
        tool_call_id: str,
        description: str,
        subagent_type: str,
        *,
        context: object,
        config: RunnableConfig,
        state: Mapping[str, Any],
        **fields: Any,
    ) -> Delegation:
        """The delegation of one tool call; `fields` are further `Delegation` fields. Its id is
        derived from the run, the tool call and what it asks, so the same call finds the same
        delegation (a resumed thread re-attaches) and an edited one does not."""
        piece = context_for(subagent_type, context, self.names, self.settings.secret_keys)
        thread_id = thread_id_of(config)
        thread = thread_id or state.get(STAND_IN_THREAD_ID_KEY) or uuid.uuid4().hex[:12]
        recursion_limit = int(config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT)
        route = self._routes.get(subagent_type, Route())
        return Delegation(
            id=delegation_id(thread, tool_call_id, subagent_type, description),
            subagent_type=subagent_type,
            description=description,
            context=piece.values,
            secrets=piece.secrets,
            secret_str_keys=piece.secret_str_keys,
            context_type=piece.type_path,
            # The caller's limit, not LangGraph's default of 25, bounds the subagent too.
            limits=self.settings.limits(recursion_limit),
            thread_id=thread_id,
            queue=route.queue,
            spec=dict(route.digests),
            inherited=route.inherited,
            store_namespaces=self._store_namespaces() if route.inherited.backend else {},
            caller=caller_run(config),
            budgets=self._budget_refs(config, state),
            **fields,
        )


def thread_id_of(config: RunnableConfig) -> str | None:
    thread_id = (config.get("configurable") or {}).get("thread_id")
    return str(thread_id) if thread_id is not None else None


def delegation_id(thread: str, tool_call_id: str, subagent_type: str, description: str) -> str:
    """The same call in the same thread is the same delegation; an edited one is not."""
    digest = hashlib.sha256(f"{subagent_type}\0{description}".encode()).hexdigest()[:8]
    # Short enough to leave room for the `:r<n>` of the delegations that resume it.
    return _UNSAFE_ID_CHARS.sub("_", f"{thread}:{tool_call_id}")[:180] + f":{digest}"
