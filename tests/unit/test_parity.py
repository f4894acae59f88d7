"""What deepagents gives subagents from the main agent travels to workers; what cannot is
refused when the agent is built, with an error naming the argument: never a silent difference."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, cast

import pytest
from deepagents.backends import CompositeBackend, LocalShellBackend, StateBackend, StoreBackend
from deepagents.backends.protocol import BackendProtocol
from deepagents.middleware.filesystem import FilesystemPermission
from deepagents.middleware.subagents import SubAgent
from deepagents.middleware.summarization import create_summarization_tool_middleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.tools import tool
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres import PostgresStore
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from orchestrator import create_orchestrator
from orchestrator.parity import MainAgent, UnsupportedArgumentError, inherited_by
from shared.files import shared_files
from shared.registry import general_purpose_spec
from shared.schemas import Inherited
from shared.settings import Settings
from shared.stores import SharedStore


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


@dataclass
class TypedContext:
    user: str


class ModelContext(BaseModel):
    user: str


def _classes_no_worker_can_import() -> tuple[type, type]:
    """Classes no module-level name holds (only `REFUSED`'s values do): nothing to import."""

    @dataclass
    class LocalContext:
        user: str

    class LocalModel(BaseModel):
        user: str

    return LocalContext, LocalModel


def _settings(**changes: Any) -> Settings:
    return Settings(redis_url="redis://stub:6379/0", files_url="memory://parity", _env_file=None, **changes)  # type: ignore[call-arg]


OWN = {"name": "researcher", "description": "d", "system_prompt": "p", "tools": [], "model": "offline"}
DENY = FilesystemPermission(operations=["write"], paths=["/**"], mode="deny")
ASK = FilesystemPermission(operations=["write"], paths=["/secrets/**"], mode="interrupt")
SCRIPTED = GenericFakeChatModel(messages=iter([]))
"""A model object held by this module: workers can import it as `tests.unit.test_parity:SCRIPTED`."""


def _postgres_store(url: str) -> PostgresStore:
    """A store on `url` that never connects: only where it points is checked."""
    return PostgresStore(ConnectionPool(url, open=False))  # type: ignore[arg-type]


class _Own(BackendProtocol):
    """A backend of the caller's own: nothing a worker can rebuild."""


def _say(text: str) -> str:
    """Say it (a tool only this test's own wrapper holds)."""
    return text


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "fork": ({"subagents": [{**OWN, "mode": "fork"}]}, "mode='fork' is not supported"),
    "a tool no worker can import": (
        {"subagents": [{"name": "r", "description": "d", "model": "offline"}], "tools": [tool(_say)]},
        "tools: deepagents gives tool '_say' to subagent 'r'",
    ),
    "a provider tool dict": (
        {"subagents": [{"name": "r", "description": "d", "model": "offline"}], "tools": [{"type": "web"}]},
        "tools: deepagents gives tool",
    ),
    "a model object no worker can import": (
        {"subagents": [OWN], "model": GenericFakeChatModel(messages=iter([])), "gp": True},
        "model: deepagents runs subagent 'general-purpose' on the main agent's model object",
    ),
    "a spec without model, main model not importable": (
        {"subagents": [{**OWN, "model": None}], "model": GenericFakeChatModel(messages=iter([]))},
        "subagent 'researcher'",
    ),
    "approval with a function description": (
        {
            "subagents": [OWN],
            "interrupt_on": {"write_file": {"allowed_decisions": ["approve"], "description": _say}},
        },
        "interrupt_on: deepagents applies it to subagent 'researcher'",
    ),
    "a backend factory (deepagents 0.7 refuses it too)": (
        {"subagents": [OWN], "backend": lambda runtime: StateBackend()},
        "backend: a backend factory, which deepagents 0.7 refuses too",
    ),
    "a backend part no worker can rebuild": (
        {"subagents": [OWN], "backend": CompositeBackend(default=StateBackend(), routes={"/x/": _Own()})},
        "backend.routes['/x/']: a _Own, which workers cannot rebuild",
    ),
    "a shell backend": (
        {"subagents": [OWN], "backend": LocalShellBackend(root_dir="/tmp")},
        "backend: a LocalShellBackend, which workers cannot rebuild",
    ),
    "a StoreBackend with a store of its own": (
        {
            "subagents": [OWN],
            "backend": StoreBackend(namespace=lambda runtime: ("m",), store=InMemoryStore()),
        },
        "backend: a StoreBackend with a store of its own",
    ),
    "a spec's middleware keeping files in a StateBackend": (
        {
            "subagents": [
                {**OWN, "middleware": [create_summarization_tool_middleware(SCRIPTED, StateBackend())]}
            ]
        },
        "subagent 'researcher': its middleware[0] (SummarizationToolMiddleware) keeps files in a "
        "StateBackend, which on a worker is the subagent's own state",
    ),
    "an InMemoryStore": (
        {"subagents": [OWN], "store": InMemoryStore()},
        "store: an InMemoryStore lives in one process, and subagents on workers share the main agent's "
        "store; pass shared.stores.SharedStore.from_settings(settings), or set TASKFORCE_STORE_URL",
    ),
    "a PostgresStore without TASKFORCE_STORE_URL": (
        {"subagents": [OWN], "store": _postgres_store("postgresql://localhost/test")},
        "store: workers open no PostgresStore: set TASKFORCE_STORE_URL to its database",
    ),
    "a PostgresStore on another database": (
        {"subagents": [OWN], "store": _postgres_store("postgresql://localhost/other"), "pg": True},
        "store: this PostgresStore is not on TASKFORCE_STORE_URL's database, which workers open; pass the "
        "PostgresStore on TASKFORCE_STORE_URL",
    ),
    "a SharedStore where workers open a PostgresStore": (
        {"subagents": [OWN], "store": SharedStore.from_url("redis://stub:6379/0", "tf:store"), "pg": True},
        "store: workers open the PostgresStore on TASKFORCE_STORE_URL, not this SharedStore",
    ),
    "a shared store the workers do not open": (
        {"subagents": [OWN], "store": SharedStore.from_url("redis://stub:6379/0", "elsewhere:store")},
        "store: this SharedStore ('elsewhere:store') is not the one workers open",
    ),
    "a dataclass context no worker can import": (
        {"subagents": [OWN], "context_schema": _classes_no_worker_can_import()[0]},
        "context_schema=LocalContext: subagents get the context as this type, which workers import",
    ),
    "a pydantic context no worker can import": (
        {"subagents": [OWN], "context_schema": _classes_no_worker_can_import()[1]},
        "context_schema=LocalModel: subagents get the context as this type",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_cannot_reach_a_worker_is_refused_naming_the_argument(case: str) -> None:
    arguments, message = REFUSED[case]
    arguments = dict(arguments)
    store_url = "postgresql://localhost/test" if arguments.pop("pg", False) else None
    settings = _settings(general_purpose=arguments.pop("gp", False), store_url=store_url)
    arguments["subagents"] = [
        {key: value for key, value in spec.items() if value is not None} for spec in arguments["subagents"]
    ]

    with pytest.raises(UnsupportedArgumentError, match=re.escape(message)):
        create_orchestrator(arguments.pop("model", "offline"), settings=settings, **arguments)


MAIN = MainAgent(
    model="openai:gpt-4.1",
    tools=[lookup],
    skills=["/skills/"],
    memory=None,
    interrupt_on=None,
    permissions=None,
)


def test_a_spec_takes_what_it_leaves_out_from_the_main_agent_as_deepagents_does() -> None:
    main = MainAgent(
        model=SCRIPTED,
        tools=[lookup],
        skills=["/skills/"],
        memory=None,
        interrupt_on={"write_file": True, "task": {"allowed_decisions": ["approve"]}},
        permissions=[ASK],
    )

    inherited = inherited_by(cast(SubAgent, {"name": "bare", "description": "d"}), main)

    assert inherited == Inherited(
        interrupt_on={"write_file": True, "task": {"allowed_decisions": ["approve"]}},
        permissions=[{"operations": ["write"], "paths": ["/secrets/**"], "mode": "interrupt"}],
        tools=("tests.unit.test_parity:lookup",),
        model_path="tests.unit.test_parity:SCRIPTED",
    )  # skills are not inherited by a declarative spec, in deepagents either


def test_what_a_spec_sets_itself_is_never_overridden() -> None:
    own = cast(SubAgent, {**OWN, "interrupt_on": {}, "permissions": [DENY]})
    main = MainAgent(
        model="openai:gpt-4.1",
        tools=[lookup],
        skills=None,
        memory=None,
        interrupt_on={"x": True},
        permissions=[ASK],
    )

    assert inherited_by(own, main) == Inherited()


def test_general_purpose_runs_on_the_main_agents_model_tools_and_skills() -> None:
    inherited = inherited_by(general_purpose_spec(), MAIN)

    assert inherited == Inherited(
        tools=("tests.unit.test_parity:lookup",), model="openai:gpt-4.1", skills=["/skills/"]
    )


def test_a_subagent_model_setting_replaces_the_main_agents_model_for_subagents() -> None:
    main = dataclasses.replace(MAIN, subagent_model="openai:gpt-4.1-mini")

    assert inherited_by(general_purpose_spec(), main).model == "openai:gpt-4.1-mini"
    assert (
        inherited_by(cast(SubAgent, {"name": "bare", "description": "d"}), main).model
        == "openai:gpt-4.1-mini"
    )
    assert inherited_by(cast(SubAgent, OWN), main) == Inherited()  # its own model stays


def test_model_options_for_an_inherited_model_object_are_refused_naming_the_key() -> None:
    main = dataclasses.replace(MAIN, model=SCRIPTED)
    spec = cast(SubAgent, {"name": "bare", "description": "d", "model_options": {"timeout": 5}})

    with pytest.raises(UnsupportedArgumentError, match="subagent 'bare': its 'model_options'"):
        inherited_by(spec, main)


def test_a_general_purpose_spec_of_ones_own_is_a_declarative_spec() -> None:
    mine = cast(SubAgent, {"name": "general-purpose", "description": "mine", "tools": [], "model": "offline"})

    assert inherited_by(mine, MAIN) == Inherited()


def test_what_workers_do_as_deepagents_does_is_accepted() -> None:
    settings = _settings(general_purpose=True, files_routes={"/routed/": "memory://routed"})
    spec = {**OWN, "tools": [lookup], "permissions": [DENY]}

    create_orchestrator(
        "offline",
        [lookup],
        settings=settings,
        subagents=[spec, {"name": "bare", "description": "takes everything from the main agent"}],  # type: ignore[list-item]
        permissions=[ASK],
        interrupt_on={"task": True, "write_file": True},
        skills=["/skills/"],
        memory=["/memories/AGENTS.md", "/routed/AGENTS.md"],
        backend=shared_files(settings).backend(),
    )


def test_the_shared_store_and_typed_contexts_workers_import_are_accepted() -> None:
    settings = _settings()
    for schema in (TypedContext, ModelContext):
        create_orchestrator(
            "offline",
            settings=settings,
            subagents=[OWN],  # type: ignore[list-item]
            store=SharedStore.from_settings(settings),
            context_schema=schema,
        )


def test_every_subagent_gets_the_main_agents_store_whatever_its_spec_sets() -> None:
    store = SharedStore.from_settings(_settings())
    main = MainAgent(
        model="openai:gpt-4.1",
        tools=None,
        skills=None,
        memory=None,
        interrupt_on=None,
        permissions=None,
        store=store,
    )

    assert inherited_by(cast(SubAgent, OWN), main) == Inherited(store=True)
    assert inherited_by(general_purpose_spec(), main) == Inherited(model="openai:gpt-4.1", store=True)
    assert inherited_by(cast(SubAgent, OWN), MAIN) == Inherited()


def test_a_postgres_store_on_the_workers_database_is_accepted() -> None:
    settings = _settings(store_url="postgresql://postgres@localhost:5432/test")
    store = _postgres_store("host=localhost dbname=test user=postgres")

    create_orchestrator("offline", subagents=[cast(SubAgent, OWN)], store=store, settings=settings)
