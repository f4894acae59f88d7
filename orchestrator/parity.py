"""What deepagents gives subagents from the main agent, made to travel to workers, and what
`create_orchestrator` refuses at build time because it cannot: never a silent difference,
always an error naming the argument.

Each rule mirrors a line of `create_deep_agent` (deepagents' graph.py). A declarative subagent
whose spec leaves out `interrupt_on`, `permissions`, `tools` or `model` takes the main agent's;
the general-purpose subagent takes the main agent's model, tools, skills, permissions and
approvals; every subagent takes the main agent's `backend` (`orchestrator.backends`). Rules,
approvals and the backend's layout travel as JSON; tools and model objects as the import path
of the module-level name that holds them, which workers import. Every subagent gets the main
agent's `store` (`runtime.store`), which travels as a flag: workers open the deployment's store
from their own settings (`shared.stores.open_deployment_store`), so that is the only store
accepted. A context typed by a dataclass or pydantic `context_schema` travels with each
delegation (`shared.context`), its class as an import path, so a class no worker can import is
refused here, and so is `mode="fork"`: the parent's messages do not travel.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from deepagents.backends import StateBackend
from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from langchain.agents.middleware import AgentMiddleware, InterruptOnConfig
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from pydantic import BaseModel

from shared.postgres import database_of
from shared.registry import (
    GENERAL_PURPOSE,
    MODEL_OPTIONS_KEY,
    general_purpose_spec,
    import_path_of,
)
from shared.schemas import BackendLayout, Inherited
from shared.settings import Settings
from shared.stores import SharedStore


class UnsupportedArgumentError(ValueError):
    """An argument deepagents would honour in a subagent that taskforce's workers cannot."""


@dataclasses.dataclass(frozen=True)
class MainAgent:
    """The arguments of `create_orchestrator` that deepagents hands down to subagents (the
    context typed by `context_schema` is handed down at run time)."""

    model: str | BaseChatModel
    tools: Sequence[Any] | None
    skills: list[str] | None
    memory: list[str] | None
    interrupt_on: Mapping[str, bool | InterruptOnConfig] | None
    permissions: list[FilesystemPermission] | None
    store: BaseStore | None = None
    backend: BackendLayout | None = None
    """The main agent's `backend=` as workers rebuild it; unset, the shared files."""
    context_schema: object = None
    subagent_model: str | None = None
    """What subagents that name no model run on instead of `model` (TASKFORCE_SUBAGENT_MODEL)."""


def _tool_paths(tools: Sequence[Any], receiver: str) -> tuple[str, ...]:
    paths = []
    for given in tools:
        name = given.name if isinstance(given, BaseTool) else getattr(given, "__name__", repr(given))
        path = None if isinstance(given, dict) else import_path_of(given)
        if path is None:
            raise UnsupportedArgumentError(
                f"tools: deepagents gives tool {name!r} to subagent {receiver!r}, and workers can only "
                "import tools: define it at module level in a module the workers can import"
            )
        paths.append(path)
    return tuple(paths)


def _model(model: str | BaseChatModel, receiver: str) -> dict[str, str]:
    if isinstance(model, str):
        return {"model": model}
    path = import_path_of(model)
    if path is None:
        raise UnsupportedArgumentError(
            f"model: deepagents runs subagent {receiver!r} on the main agent's model object, which "
            "workers can only import: define it at module level in a module the workers can import, "
            "pass a model string, or give the spec a 'model'"
        )
    return {"model_path": path}


def _approvals(interrupt_on: Mapping[str, bool | InterruptOnConfig], receiver: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(interrupt_on)))
    except TypeError:
        raise UnsupportedArgumentError(
            f"interrupt_on: deepagents applies it to subagent {receiver!r}, and workers receive it as "
            "JSON; give each tool's config a string 'description', not a function"
        ) from None


def inherited_by(spec: SubAgent, main: MainAgent) -> Inherited:
    """What deepagents' `create_deep_agent` fills into this spec from the main agent."""
    name = spec["name"]
    default_general_purpose = name == GENERAL_PURPOSE and spec == general_purpose_spec()
    fields: dict[str, Any] = {}
    if main.interrupt_on and "interrupt_on" not in spec:
        fields["interrupt_on"] = _approvals(main.interrupt_on, name)
    if main.permissions is not None and "permissions" not in spec:
        fields["permissions"] = [dataclasses.asdict(rule) for rule in main.permissions]
    if main.tools and ("tools" not in spec or default_general_purpose):
        fields["tools"] = _tool_paths(main.tools, name)
    if "model" not in spec:
        fields |= _model(main.subagent_model or main.model, name)
        if "model_path" in fields and cast(dict[str, Any], spec).get(MODEL_OPTIONS_KEY):
            raise UnsupportedArgumentError(
                f"subagent {name!r}: its {MODEL_OPTIONS_KEY!r} configure a model built from a string, and "
                "it runs on the main agent's model object; give it a 'model' string"
            )
    if default_general_purpose and main.skills is not None:
        fields["skills"] = list(main.skills)
    if main.store is not None:
        fields["store"] = True
    if main.backend is not None:
        fields["backend"] = main.backend
    return Inherited(**fields)


def _store_refusal(store: BaseStore | None, settings: Settings) -> str | None:
    """Why workers cannot give subagents this very store as `runtime.store`, if they cannot."""
    from langgraph.store.postgres import PostgresStore

    if store is None:
        return None
    fix = (
        "pass the PostgresStore on TASKFORCE_STORE_URL (shared.stores.open_deployment_store(settings))"
        if settings.store_url is not None
        else "pass shared.stores.SharedStore.from_settings(settings), or set TASKFORCE_STORE_URL and "
        "pass a PostgresStore on it"
    )
    if isinstance(store, SharedStore):
        return _shared_store_refusal(store, settings, fix)
    if isinstance(store, PostgresStore):
        return _postgres_store_refusal(store, settings, fix)
    if isinstance(store, InMemoryStore):
        return (
            "an InMemoryStore lives in one process, and subagents on workers share the main agent's "
            f"store; {fix}"
        )
    return f"workers can open only the deployment's store, not a {type(store).__name__}; {fix}"


def _shared_store_refusal(store: SharedStore, settings: Settings, fix: str) -> str | None:
    if settings.store_url is not None:
        return f"workers open the PostgresStore on TASKFORCE_STORE_URL, not this SharedStore; {fix}"
    if not store.opened_by(settings):
        return (
            f"this SharedStore ({store.prefix!r}) is not the one workers open from their settings "
            "(TASKFORCE_REDIS_URL, TASKFORCE_QUEUE_PREFIX): pass SharedStore.from_settings(settings)"
        )
    return None


def _postgres_store_refusal(store: BaseStore, settings: Settings, fix: str) -> str | None:
    if settings.store_url is None:
        return f"workers open no PostgresStore: set TASKFORCE_STORE_URL to its database; {fix}"
    if _postgres_database(store) != database_of(settings.store_url.get_secret_value()):
        return f"this PostgresStore is not on TASKFORCE_STORE_URL's database, which workers open; {fix}"
    return None


def _postgres_database(store: BaseStore) -> tuple[str, str, str, str] | None:
    conn = getattr(store, "conn", None)
    conninfo = getattr(conn, "conninfo", None) or getattr(getattr(conn, "info", None), "dsn", None)
    return database_of(conninfo) if isinstance(conninfo, str) else None


def _holds_state_backend(value: object, depth: int = 2) -> bool:
    """A `StateBackend` (or the class itself, as the guide passes it) held by a middleware or by
    one it wraps (the summarization tool wraps the summarization middleware)."""
    if value is StateBackend or isinstance(value, StateBackend):
        return True
    if depth and isinstance(value, AgentMiddleware):
        return any(_holds_state_backend(held, depth - 1) for held in vars(value).values())
    return False


def _refuse_what_cannot_travel(offered: Sequence[SubAgent], main: MainAgent, settings: Settings) -> None:
    for spec in offered:
        for index, middleware in enumerate(spec.get("middleware") or []):
            if _holds_state_backend(middleware):
                raise UnsupportedArgumentError(
                    f"subagent {spec['name']!r}: its middleware[{index}] ({type(middleware).__name__}) keeps "
                    "files in a StateBackend, which on a worker is the subagent's own state, lost when it "
                    "reports (deepagents hands it back to the main agent's state); build it on "
                    "shared.files.workspace_backend(), the run's shared workspace"
                )
        if spec.get("mode") == "fork":
            raise UnsupportedArgumentError(
                f"subagent {spec['name']!r}: mode='fork' is not supported, the parent's messages do not "
                "travel to workers; remove it to run the subagent from a fresh context"
            )
    refusal = _store_refusal(main.store, settings)
    if refusal is not None:
        raise UnsupportedArgumentError(f"store: {refusal}")
    schema = main.context_schema
    if (
        isinstance(schema, type)
        and (dataclasses.is_dataclass(schema) or issubclass(schema, BaseModel))
        and import_path_of(schema) is None
    ):
        raise UnsupportedArgumentError(
            f"context_schema={schema.__name__}: subagents get the context as this type, which workers "
            "import; define it at module level in a module the workers can import"
        )


def inheritance(offered: Sequence[SubAgent], main: MainAgent, *, settings: Settings) -> dict[str, Inherited]:
    """What each offered subagent type inherits, by name; raises `UnsupportedArgumentError`
    for anything deepagents would give a subagent that cannot reach a worker (with `settings`,
    the workers')."""
    _refuse_what_cannot_travel(offered, main, settings)
    return {spec["name"]: inherited_by(spec, main) for spec in offered}
