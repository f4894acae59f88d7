"""`create_orchestrator`: `create_deep_agent` whose `task` tool runs subagents on worker pools."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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

from orchestrator.client import DelegationClient
from orchestrator.middleware import CeleryDelegationMiddleware, DelegationListener
from orchestrator.parity import MainAgent, inheritance
from shared.celery_app import create_celery_app
from shared.files import shared_files
from shared.files.workspace import MEMORIES, SKILLS
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
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build a deep agent exactly as `create_deep_agent` would, except that every `task`
    delegation runs as a Celery job on the worker pools.

    Arguments are `create_deep_agent`'s. `subagents` defaults to the registry named by
    `TASKFORCE_SUBAGENTS`; workers must load the same specs (they rebuild subagents from it).
    Async (remote) subagents pass straight through to deepagents. `backend` defaults to the
    shared files, so the main agent reads what workers write. `store`, which subagents' tools
    get too, must be `shared.stores.SharedStore.from_settings(settings)`: workers open it as well.
    """
    settings = settings or Settings()
    remote = [spec for spec in subagents or [] if "graph_id" in spec]
    local = (
        validate_specs([spec for spec in subagents if "graph_id" not in spec])
        if subagents is not None
        else load_registry(settings.subagents)
    )
    offered = effective_specs(local, general_purpose=settings.general_purpose)
    if not offered:
        raise ValueError(
            "no subagents to delegate to: general-purpose is turned off (TASKFORCE_GENERAL_PURPOSE) "
            "and no subagents were given or registered (TASKFORCE_SUBAGENTS)"
        )
    main = MainAgent(
        model=model if model is not None else settings.model,
        tools=tools,
        skills=skills,
        memory=memory,
        interrupt_on=interrupt_on,
        permissions=permissions,
        store=store,
        context_schema=context_schema,
    )
    inherited = inheritance(
        offered, main, shared=[MEMORIES, SKILLS, *settings.files_routes], backend=backend, settings=settings
    )
    delegation = CeleryDelegationMiddleware(
        client or DelegationClient(create_celery_app(settings), settings),
        [(spec["name"], spec["description"]) for spec in offered],
        listener=listener,
        queues={spec["name"]: queue_name(spec) for spec in offered},
        digests={spec["name"]: spec_digests(spec) for spec in offered},
        inherited=inherited,
    )
    return create_deep_agent(
        make_model(model if model is not None else settings.model),
        tools,
        system_prompt=system_prompt,
        middleware=[delegation, *middleware],
        subagents=remote or None,
        skills=skills,
        memory=memory,
        permissions=permissions,
        backend=backend if backend is not None else shared_files(settings).backend(),
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
