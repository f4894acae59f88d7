"""`create_orchestrator`: what it hands deepagents, what it fills in when an argument is left
out (the registry, the model setting, the shared files), and what it refuses before any run."""

from __future__ import annotations

import inspect
import re
import sys
import uuid
from typing import Any, cast

import pytest
from deepagents import create_deep_agent
from deepagents.middleware.filesystem import FilesystemPermission
from langchain.agents import AgentState
from langchain.agents.middleware.types import AgentMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel

from orchestrator import agent as agent_module
from orchestrator import create_orchestrator
from orchestrator.delegation.client import DelegationClient
from orchestrator.delegation.task_tool import CeleryDelegationMiddleware
from shared.files import read_text, shared_files
from shared.offline_model import OFFLINE_MARK
from shared.registry import RegistryError
from shared.schemas import Delegation, Inherited, Report
from shared.settings import Settings
from shared.spec_digest import spec_digests
from shared.stores import SharedStore
from tests.support.models import scripted, tool_call
from tests.unit.test_async_tasks import BackgroundClient
from tests.unit.test_middleware import SUBAGENTS
from tests.unit.test_parity import TypedContext, lookup

REGISTRY = "tests.unit.test_middleware:SUBAGENTS"
OWN = {"name": "researcher", "description": "researches", "tools": [], "model": "offline"}


class Answer(BaseModel):
    text: str


class NotedState(AgentState[Any]):
    note: str


class Noting(AgentMiddleware[Any, Any, Any]):
    """A middleware of the caller's own, which must reach the agent after taskforce's."""


def _settings(**changes: Any) -> Settings:
    # A memory store of the test's own: no other test sees its files.
    files_url = f"memory://agent-{uuid.uuid4().hex[:8]}"
    return Settings(redis_url="redis://stub:6379/0", files_url=files_url, _env_file=None, **changes)  # type: ignore[call-arg]


def _client(settings: Settings) -> DelegationClient:
    """A client that answers every delegation at once, with the test's settings."""
    client = BackgroundClient()
    client.settings = settings
    return cast(DelegationClient, client)


def _sent(client: DelegationClient) -> list[Delegation]:
    """Each delegation once: the tool call re-sends what `after_model` sent, to attach to it."""
    return list({d.id: d for d in cast(BackgroundClient, client).sent_delegations}.values())


def _offered(agent: Any) -> list[str]:
    """The subagent types the `task` tool's description lists, as the model reads them."""
    description = agent.get_graph().nodes["tools"].data.tools_by_name["task"].description
    return re.findall(r"^- ([\w.\-]+): ", description, re.MULTILINE)


def test_it_takes_every_argument_create_deep_agent_takes_with_the_same_defaults() -> None:
    """A drop-in replacement: code written for `create_deep_agent` calls it unchanged. A
    deepagents release that adds an argument fails here until taskforce passes it on."""
    theirs = inspect.signature(create_deep_agent).parameters
    ours = inspect.signature(create_orchestrator).parameters

    assert [(name, ours[name].kind, ours[name].default) for name in theirs if name in ours] == [
        (name, parameter.kind, parameter.default) for name, parameter in theirs.items()
    ]


def test_every_argument_reaches_deepagents_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    given: dict[str, Any] = {}
    compiled = object()

    def record(model: Any, tools: Any, **options: Any) -> Any:
        given.update(options, model=model, tools=tools)
        return compiled

    monkeypatch.setattr(agent_module, "create_deep_agent", record)
    settings = _settings(general_purpose=False)
    remote = {"name": "far", "description": "on a server", "graph_id": "agent", "url": "http://127.0.0.1:9"}
    arguments: dict[str, Any] = {
        "system_prompt": "Plan first.",
        "skills": ["/skills/"],
        "memory": ["/memories/AGENTS.md"],
        "permissions": [FilesystemPermission(operations=["write"], paths=["/secrets/**"], mode="deny")],
        "backend": shared_files(settings).backend(),
        "interrupt_on": {"write_file": True},
        "response_format": Answer,
        "state_schema": NotedState,
        "context_schema": TypedContext,
        "checkpointer": InMemorySaver(),
        "store": SharedStore.from_settings(settings),
        "debug": True,
        "name": "planner",
        "cache": InMemoryCache(),
    }
    model = GenericFakeChatModel(messages=iter([]))
    mine = Noting()

    built = create_orchestrator(
        model,
        [lookup],
        subagents=cast(Any, [OWN, remote]),
        middleware=[mine],
        settings=settings,
        client=_client(settings),
        **arguments,
    )

    assert cast(object, built) is compiled
    for name, value in arguments.items():
        assert given[name] is value, name
    assert given["model"] is model
    assert given["tools"] == [lookup]
    # Declarative subagents run on the pools through taskforce's `task` tool, which takes the
    # place of deepagents' own; only subagents on Agent Protocol servers are deepagents' to run.
    assert given["subagents"] == [remote]
    # The shared files given as the backend: no state files to seed (orchestrator.seeded_files).
    (delegation, *rest) = given["middleware"]
    assert isinstance(delegation, CeleryDelegationMiddleware)
    assert rest == [mine]


def test_left_out_the_registry_is_offered_and_the_model_setting_answers() -> None:
    settings = _settings(subagents=REGISTRY, model="offline")
    client = _client(settings)
    agent = create_orchestrator(settings=settings, client=client)

    assert _offered(agent) == ["general-purpose", "researcher"]
    state = agent.invoke({"messages": [HumanMessage(content="Check these:\n- the logs\n- the alerts")]})

    # The offline model delegates each bullet to the first specialised type it is offered.
    assert [(d.subagent_type, d.description) for d in _sent(client)] == [
        ("researcher", "the logs"),
        ("researcher", "the alerts"),
    ]
    assert state["messages"][-1].text.startswith(OFFLINE_MARK)
    assert "did the logs" in state["messages"][-1].text


def test_subagents_given_replace_the_registry_and_general_purpose_can_be_turned_off() -> None:
    settings = _settings(subagents=REGISTRY, general_purpose=False)
    writer = {"name": "writer", "description": "writes", "tools": [], "model": "offline"}

    assert _offered(create_orchestrator("offline", settings=settings, client=_client(settings))) == [
        "researcher"
    ]
    mine = create_orchestrator(
        "offline", subagents=cast(Any, [writer]), settings=settings, client=_client(settings)
    )
    assert _offered(mine) == ["writer"]


@pytest.mark.parametrize("subagents", [None, []], ids=["no registry", "none given"])
def test_with_nothing_to_delegate_to_it_refuses_naming_both_settings(subagents: list[Any] | None) -> None:
    settings = _settings(general_purpose=False)

    with pytest.raises(ValueError, match="no subagents to delegate to") as refused:
        create_orchestrator("offline", subagents=subagents, settings=settings, client=_client(settings))
    assert "TASKFORCE_GENERAL_PURPOSE" in str(refused.value)
    assert "TASKFORCE_SUBAGENTS" in str(refused.value)


@pytest.mark.parametrize(
    ("subagents", "message"),
    [
        ([{"name": "researcher"}], "registry entry 0 needs a non-empty string 'description'"),
        ([{**OWN, "colour": "red"}], "subagent 'researcher' has unknown keys ['colour']"),
        ([OWN, {**OWN, "description": "again"}], "subagent name 'researcher' appears twice"),
        ([{**OWN, "queue": "gpu pool"}], "subagent 'researcher': 'queue' must be a name"),
    ],
)
def test_a_spec_no_worker_could_load_is_refused_before_any_run(
    subagents: list[dict[str, Any]], message: str
) -> None:
    settings = _settings()

    with pytest.raises(RegistryError, match=re.escape(message)):
        create_orchestrator("offline", subagents=cast(Any, subagents), settings=settings)


def test_a_registry_that_cannot_be_imported_is_refused_naming_it() -> None:
    settings = _settings(subagents="tests.unit.no_such_module:SUBAGENTS")

    with pytest.raises(RegistryError, match=re.escape("tests.unit.no_such_module")):
        create_orchestrator("offline", settings=settings)


def test_the_main_agent_works_in_the_shared_files_of_its_run() -> None:
    """Left out, `backend` is the shared files: what the main agent writes, workers and
    `taskforce files` see in the run's workspace, and it reads what they put in /memories/."""
    settings = _settings(general_purpose=False)
    files = shared_files(settings)
    files.for_run("someone-else").write("/memories/team.md", "prefer small steps")
    turn = [
        tool_call("write_file", "w", file_path="/notes/plan.md", content="1. look\n2. leap"),
        tool_call("read_file", "r", file_path="/memories/team.md"),
    ]
    agent = create_orchestrator(
        scripted(turn, "done"), subagents=cast(Any, SUBAGENTS), settings=settings, client=_client(settings)
    )

    state = agent.invoke(
        {"messages": [HumanMessage(content="plan")]}, {"configurable": {"thread_id": "run-files"}}
    )

    assert read_text(files.for_run("run-files"), "/notes/plan.md") == "1. look\n2. leap"
    with pytest.raises(FileNotFoundError):
        read_text(files.for_run("run-other"), "/notes/plan.md")
    read = next(m for m in state["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == "r")
    assert "prefer small steps" in str(read.content)


class Recorder:
    """A `DelegationListener`, as the CLI's progress display is one."""

    def __init__(self) -> None:
        self.dispatched_ids: list[str] = []
        self.reported_ids: list[str] = []

    def dispatched(self, delegation: Delegation) -> None:
        self.dispatched_ids.append(delegation.id)

    def reported(self, report: Report) -> None:
        self.reported_ids.append(report.delegation_id)


def test_delegations_go_where_their_spec_routes_them_and_the_listener_hears_of_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(general_purpose=False)
    routed = {"name": "gpu-analyst", "description": "crunches", "queue": "gpu", "tools": []}
    client = _client(settings)
    listener = Recorder()
    model = scripted(
        [tool_call("task", "a", description="crunch", subagent_type="gpu-analyst")],
        [tool_call("task", "b", description="read", subagent_type="researcher")],
        "done",
    )
    # A spec without a model runs on the main agent's, which workers import by this name.
    monkeypatch.setattr(sys.modules[__name__], "MAIN_MODEL", model, raising=False)
    agent = create_orchestrator(
        model, subagents=cast(Any, [OWN, routed]), settings=settings, client=client, listener=listener
    )

    agent.invoke({"messages": [HumanMessage(content="go")]}, {"configurable": {"thread_id": "run-r"}})

    crunch, read = _sent(client)
    assert (crunch.queue, read.queue) == ("gpu", "researcher")
    assert (crunch.spec, read.spec) == (spec_digests(cast(Any, routed)), spec_digests(cast(Any, OWN)))
    assert crunch.inherited == Inherited(model_path=f"{__name__}:MAIN_MODEL")
    assert read.inherited == Inherited()
    assert (crunch.thread_id, read.thread_id) == ("run-r", "run-r")
    assert listener.dispatched_ids == [crunch.id, read.id]
    assert listener.reported_ids == [crunch.id, read.id]
