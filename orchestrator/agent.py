"""`create_orchestrator`: `create_deep_agent` whose `task` tool runs subagents on worker pools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from deepagents import create_deep_agent
from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.async_subagents import AsyncSubAgent
from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from langchain.agents.middleware import InterruptOnConfig
from langchain.agents.middleware.types import AgentMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.tools import BaseTool
from langgraph.cache.base import BaseCache
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer

from orchestrator.backends import travelling_backend
from orchestrator.budgets import BudgetMiddleware, RunBudgets
from orchestrator.delegation.async_tasks import PoolAsyncSubAgentMiddleware, async_targets, refuse_pausing
from orchestrator.delegation.building import DelegationBuilder, Route
from orchestrator.delegation.client import DelegationClient
from orchestrator.delegation.task_tool import CeleryDelegationMiddleware, DelegationListener
from orchestrator.parity import MainAgent, UnsupportedArgumentError, inheritance
from orchestrator.seeded_files import SeededFiles
from shared.budgets import Accounts, Budget, require_prices
from shared.celery_app import create_celery_app
from shared.files import shared_files
from shared.guarded_model import ModelGuard, guarded, pool_guard
from shared.models import make_model
from shared.registry import effective_specs, load_registry, queue_name, validate_specs
from shared.settings import Settings
from shared.spec_digest import spec_digests


def create_orchestrator(
    model: str | BaseChatModel | None = None,
    tools: Sequence[BaseTool | Callable[..., Any] | dict[str, Any]] | None = None,
    *,
    system_prompt: str | SystemMessage | None = None,
    middleware: Sequence[AgentMiddleware[Any, Any, Any]] = (),
    subagents: Sequence[SubAgent | AsyncSubAgent] | None = None,
    skills: list[str] | None = None,
    memory: list[str] | None = None,
    permissions: list[FilesystemPermission] | None = None,
    backend: BackendProtocol | None = None,
    interrupt_on: dict[str, bool | InterruptOnConfig] | None = None,
    response_format: Any = None,
    state_schema: Any = None,
    context_schema: Any = None,
    checkpointer: Checkpointer | None = None,
    store: BaseStore | None = None,
    debug: bool = False,
    name: str | None = None,
    cache: BaseCache[Any] | None = None,
    settings: Settings | None = None,
    client: DelegationClient | None = None,
    listener: DelegationListener | None = None,
    budget: Budget | None = None,
    batch_budget: Budget | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build a deep agent exactly as `create_deep_agent` would, except that every `task`
    delegation runs as a Celery job on the worker pools.

    Arguments are `create_deep_agent`'s. `subagents` defaults to the registry named by
    `TASKFORCE_SUBAGENTS`; workers must load the same specs (they rebuild subagents from it).
    An async subagent (`graph_id`) without a `url` runs on the worker pools as the registry
    subagent its `graph_id` names (`orchestrator.delegation.async_tasks`); one with a `url` passes straight
    through to deepagents, which runs it on that Agent Protocol server. `backend` defaults to
    the shared files, so the main agent reads what workers write; one made of deepagents'
    `StateBackend`, `StoreBackend` and `FilesystemBackend` parts is rebuilt on workers, its state
    parts on the run's shared workspace (`orchestrator.backends`). Files given to `invoke` as
    `{"files": ...}` are written there (`orchestrator.seeded_files`). `store`, which subagents'
    tools get too, must be the deployment's (`shared.stores.open_deployment_store`): workers open
    it as well. `budget` caps what each run (each batch item, in a batch) spends on model calls,
    its subagents' included; `batch_budget`, what all of a batch's items spend together
    (`orchestrator.budgets`).
    """
    settings = settings or Settings()
    remote = [spec for spec in subagents or [] if "graph_id" in spec and "url" in spec]
    pooled = [
        cast(AsyncSubAgent, spec) for spec in subagents or [] if "graph_id" in spec and "url" not in spec
    ]
    if remote and pooled:
        raise UnsupportedArgumentError(
            "subagents: async subagents on Agent Protocol servers (with 'url') and on the worker pools "
            "(without) cannot be mixed yet, both would offer start_async_task; give every one a 'url', "
            "or none"
        )
    local = (
        validate_specs([spec for spec in subagents if "graph_id" not in spec])
        if subagents is not None
        else load_registry(settings.subagents)
    )
    offered = effective_specs(local, general_purpose=settings.general_purpose)
    targets = _async_targets(pooled, offered, settings)
    if not offered and not pooled and not remote:
        raise ValueError(
            "no subagents to delegate to: general-purpose is turned off (TASKFORCE_GENERAL_PURPOSE) "
            "and no subagents were given or registered (TASKFORCE_SUBAGENTS)"
        )
    travelling = travelling_backend(backend, shared_files(settings), store)
    main = MainAgent(
        model=model if model is not None else settings.model,
        tools=tools,
        skills=skills,
        memory=memory,
        interrupt_on=interrupt_on,
        permissions=permissions,
        store=store,
        backend=travelling.layout,
        context_schema=context_schema,
        subagent_model=settings.subagent_model,
    )
    # Every type a delegation may go to: those `task` offers, and those async subagents run as.
    routed = [*offered, *(spec for spec in targets.values() if spec not in offered)]
    inherited = inheritance(routed, main, settings=settings)
    refuse_pausing(pooled, targets, inherited)
    budgets = RunBudgets(run=budget, batch=batch_budget)
    require_prices([budget, batch_budget], settings.model_prices)
    builder = DelegationBuilder(
        settings,
        {
            spec["name"]: Route(queue_name(spec), spec_digests(spec), inherited[spec["name"]])
            for spec in routed
        },
        budget_refs=budgets.refs,
        store_namespaces=travelling.store_namespaces,
    )
    client = client or DelegationClient(create_celery_app(settings), settings)
    delegation = CeleryDelegationMiddleware(
        client, builder, [(spec["name"], spec["description"]) for spec in offered], listener=listener
    )
    background: list[AgentMiddleware[Any, Any, Any]] = (
        [PoolAsyncSubAgentMiddleware(client, builder, pooled)] if pooled else []
    )
    seeding = [SeededFiles(travelling)] if travelling.state_files else []
    if budgets:
        background.append(BudgetMiddleware(budgets, Accounts.of(client.ledger.client, settings)))
    return create_deep_agent(
        _main_model(model, settings, pool_guard(settings, lambda: client.ledger.client)),
        tools,
        system_prompt=system_prompt,
        middleware=[*seeding, delegation, *background, *middleware],
        subagents=remote or None,
        skills=skills,
        memory=memory,
        permissions=permissions,
        backend=travelling.main,
        interrupt_on=interrupt_on,
        response_format=response_format,
        state_schema=state_schema,
        context_schema=context_schema,
        checkpointer=checkpointer,
        store=store,
        debug=debug,
        name=name,
        cache=cache,
    )


def _async_targets(
    pooled: list[AsyncSubAgent], offered: list[SubAgent], settings: Settings
) -> dict[str, SubAgent]:
    """The specs pooled async subagents run as: a declarative spec the `task` tool offers, else
    one of the workers' registry (`TASKFORCE_SUBAGENTS`), which an async subagent may use alone."""
    if not pooled:
        return {}
    known = {spec["name"]: spec for spec in load_registry(settings.subagents)}
    known |= {spec["name"]: spec for spec in offered}
    return async_targets(pooled, known)


def _main_model(model: str | BaseChatModel | None, settings: Settings, guard: ModelGuard) -> BaseChatModel:
    """The main agent's model, its calls counted against the pool's limits as workers' are."""
    chosen = model if model is not None else settings.model
    return guarded(
        make_model(chosen, settings.model_arguments(chosen) if isinstance(chosen, str) else None), guard
    )
