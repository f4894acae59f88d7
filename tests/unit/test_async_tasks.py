"""Async subagents on the pools, inside a real deepagents graph, against an in-memory client:
what each of the five tools sends, cancels and returns, and what is refused at build time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any, cast

import pytest
from deepagents.middleware.async_subagents import AsyncSubAgentMiddleware
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import create_orchestrator
from orchestrator.delegation.async_tasks import PoolAsyncSubAgentMiddleware, task_id_of
from orchestrator.delegation.building import delegation_id
from orchestrator.delegation.client import DelegationClient
from orchestrator.parity import UnsupportedArgumentError
from shared.schemas import Delegation, Report
from tests.support.models import ScriptedModel
from tests.unit.test_middleware import SUBAGENTS, StubClient

BACKGROUND = {"name": "bg", "description": "researches in the background", "graph_id": "researcher"}
THREAD = "async-1"


class BackgroundClient(StubClient):
    """Keeps started delegations; each reports `did <what it was asked>` at once unless
    `hold` is set, until `finish` is called."""

    def __init__(self, *, hold: bool = False) -> None:
        super().__init__()
        self.hold = hold
        self.started: dict[str, Delegation] = {}
        self.reports: dict[str, Report] = {}
        self.cancelled: list[str] = []
        self.sent_delegations: list[Delegation] = []
        self.saver = InMemorySaver()

    def start(self, delegation: Delegation) -> None:
        if delegation.id not in self.started:
            self.started[delegation.id] = delegation
            if not self.hold:
                self.finish(delegation.id)

    def finish(self, delegation_id: str, status: str = "ok") -> None:
        delegation = self.started[delegation_id]
        asked = " / ".join([*delegation.unanswered, delegation.description])
        self.reports[delegation_id] = Report(
            delegation_id=delegation_id,
            subagent_type=delegation.subagent_type,
            status=status,  # type: ignore[arg-type]
            summary=f"did {asked}" if status == "ok" else "it broke",
        )

    def peek(self, delegation_ids: Sequence[str]) -> dict[str, Report | None]:
        return {key: self.reports.get(key) for key in delegation_ids if key in self.started}

    def cancel(self, delegation_ids: Iterable[str]) -> None:
        for key in delegation_ids:
            self.cancelled.append(key)
            self.started.pop(key, None)
            self.reports.pop(key, None)

    def send(self, delegation: Delegation) -> Future[Report]:
        self.sent_delegations.append(delegation)
        return super().send(delegation)


def _tool(name: str, call_id: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def _start(call_id: str = "s1", description: str = "dig") -> ToolCall:
    return _tool("start_async_task", call_id, description=description, subagent_type="bg")


def _first_run(call_id: str = "s1", description: str = "dig") -> str:
    return delegation_id(THREAD, call_id, "researcher", description)


TASK = task_id_of(_first_run())


def _tool_names(agent: Any) -> set[str]:
    return set(agent.get_graph().nodes["tools"].data.tools_by_name)


def _agent(client: BackgroundClient, *turns: list[ToolCall] | str, **options: Any) -> Any:
    """The main agent, on the client's checkpointer: each invoke continues the same thread."""
    messages = [
        AIMessage(content=t) if isinstance(t, str) else AIMessage(content="", tool_calls=t) for t in turns
    ]
    return create_orchestrator(
        ScriptedModel(messages=iter(messages)),
        subagents=cast(Any, [*SUBAGENTS, BACKGROUND]),
        settings=client.settings,
        client=cast(DelegationClient, client),
        checkpointer=client.saver,
        **options,
    )


def _invoke(agent: Any, given: Any = None) -> dict[str, Any]:
    config = {"configurable": {"thread_id": THREAD}}
    return cast(dict[str, Any], agent.invoke(given or {"messages": [HumanMessage(content="go")]}, config))


def _results(state: dict[str, Any]) -> dict[str, Any]:
    return {m.tool_call_id: m.content for m in state["messages"] if isinstance(m, ToolMessage)}


def test_start_sends_the_delegation_a_task_call_would_and_returns_at_once() -> None:
    client = BackgroundClient(hold=True)
    task_call = _tool("task", "t1", description="dig", subagent_type="researcher")
    state = _invoke(_agent(client, [_start(), task_call], "done"))

    assert _results(state)["s1"] == f"Launched async subagent. task_id: {TASK}"
    created = state["async_tasks"][TASK]["created_at"]
    assert state["async_tasks"][TASK] == {
        "task_id": TASK,
        "agent_name": "bg",
        "thread_id": TASK,
        "run_id": _first_run(),
        "status": "running",
        "created_at": created,
        "last_checked_at": created,
        "last_updated_at": created,
    }
    started = client.started[_first_run()]
    assert (started.conversation, started.continues, started.unanswered) == (TASK, None, ())
    # The subagent, spec, queue, limits, context and inheritance of the `task` call's delegation.
    (sent, *_) = client.sent_delegations
    assert started.model_dump(exclude={"id", "conversation"}) == sent.model_dump(
        exclude={"id", "conversation"}
    )


def test_check_reads_the_status_without_waiting_in_deepagents_shape() -> None:
    client = BackgroundClient(hold=True)
    check = [_tool("check_async_task", "c1", task_id=TASK)]
    state = _invoke(_agent(client, [_start()], check, "done"))
    assert json.loads(_results(state)["c1"]) == {"status": "running", "thread_id": TASK}

    client.finish(_first_run())
    state = _invoke(_agent(client, [_tool("check_async_task", "c2", task_id=f" {TASK} ")], "done"))
    assert json.loads(_results(state)["c2"]) == {"status": "success", "thread_id": TASK, "result": "did dig"}
    assert state["async_tasks"][TASK]["status"] == "success"

    client.finish(_first_run(), status="error")
    state = _invoke(_agent(client, [_tool("check_async_task", "c3", task_id=TASK)], "done"))
    assert json.loads(_results(state)["c3"]) == {
        "status": "error",
        "thread_id": TASK,
        "error": "Subagent 'researcher' error: it broke",
    }

    state = _invoke(_agent(client, [_tool("check_async_task", "c4", task_id="nope")], "done"))
    assert _results(state)["c4"] == "No tracked task found for task_id: 'nope'"


def test_a_follow_up_to_a_finished_task_goes_on_from_its_conversation() -> None:
    client = BackgroundClient()
    update = [_tool("update_async_task", "u1", task_id=TASK, message="and the rest?")]
    state = _invoke(_agent(client, [_start()], update, "done"))

    assert _results(state)["u1"] == f"Updated async subagent. task_id: {TASK}"
    follow_up = client.started[state["async_tasks"][TASK]["run_id"]]
    assert (follow_up.conversation, follow_up.continues, follow_up.unanswered) == (TASK, _first_run(), ())
    assert follow_up.description == "and the rest?"
    assert client.cancelled == []


def test_a_follow_up_to_a_running_task_interrupts_it_and_loses_no_message() -> None:
    client = BackgroundClient(hold=True)
    first = [_tool("update_async_task", "u1", task_id=TASK, message="faster")]
    second = [_tool("update_async_task", "u2", task_id=TASK, message="even faster")]
    state = _invoke(_agent(client, [_start()], first, second, "done"))

    latest = client.started[state["async_tasks"][TASK]["run_id"]]
    assert latest.continues is None  # no run finished: the subagent starts over, with all of it
    assert latest.unanswered == ("dig", "faster")
    assert latest.description == "even faster"
    assert len(client.cancelled) == 2
    assert client.cancelled[0] == _first_run()


def test_cancel_stops_a_running_task_and_keeps_a_finished_ones_report() -> None:
    client = BackgroundClient(hold=True)
    cancel = [_tool("cancel_async_task", "x1", task_id=TASK)]
    check = [_tool("check_async_task", "c1", task_id=TASK)]
    state = _invoke(_agent(client, [_start()], cancel, check, "done"))

    assert _results(state)["x1"] == f"Cancelled async subagent task: {TASK}"
    assert client.cancelled == [_first_run()]
    assert json.loads(_results(state)["c1"]) == {"status": "cancelled", "thread_id": TASK}

    client = BackgroundClient()
    state = _invoke(_agent(client, [_start()], cancel, check, "done"))
    assert client.cancelled == []  # it had finished: as a server's finished run, it stays
    assert json.loads(_results(state)["c1"])["status"] == "success"


def test_list_shows_live_statuses_and_filters_on_the_tracked_ones() -> None:
    client = BackgroundClient(hold=True)
    starts = [_start("s1", "one"), _start("s2", "two")]
    state = _invoke(_agent(client, starts, "started"))
    one, two = (task_id_of(_first_run(call, what)) for call, what in (("s1", "one"), ("s2", "two")))
    client.finish(_first_run("s1", "one"))

    listing = [_tool("list_async_tasks", "l1")]
    running = [_tool("list_async_tasks", "l2", status_filter="running")]
    state = _invoke(_agent(client, listing, running, "done"))

    assert _results(state)["l1"] == (
        "2 tracked task(s):\n"
        f"- task_id: {one}  agent: bg  status: success\n"
        f"- task_id: {two}  agent: bg  status: running"
    )
    assert _results(state)["l2"] == f"1 tracked task(s):\n- task_id: {two}  agent: bg  status: running"


def test_task_ids_survive_checkpoint_and_resume() -> None:
    client = BackgroundClient(hold=True)
    _invoke(_agent(client, [_start()], "started"))
    client.finish(_first_run())

    state = _invoke(
        _agent(client, [_tool("check_async_task", "c1", task_id=TASK)], "done"),
        {"messages": [HumanMessage(content="and now?")]},
    )

    assert json.loads(_results(state)["c1"])["result"] == "did dig"
    assert list(client.started) == [_first_run()]  # nothing sent twice


def test_under_ainvoke_a_finished_task_is_announced_before_the_next_model_call() -> None:
    client = BackgroundClient()
    agent = _agent(client, [_start()], [_tool("check_async_task", "c1", task_id=TASK)], "done")

    config = {"configurable": {"thread_id": THREAD}}
    state = asyncio.run(agent.ainvoke({"messages": [HumanMessage(content="go")]}, config))

    notice = next(m for m in state["messages"] if m.additional_kwargs.get("deepagents_notification"))
    assert notice.additional_kwargs["deepagents_notification"]["status"] == "success"
    assert "did dig" in "".join(block["text"] for block in notice.content)
    assert state["async_tasks"][TASK]["status"] == "success"
    assert json.loads(_results(state)["c1"])["result"] == "did dig"  # the tools' async path


def test_the_tools_are_deepagents_own_in_name_description_and_schema() -> None:
    client = BackgroundClient()
    specs = [cast(Any, BACKGROUND)]
    ours = PoolAsyncSubAgentMiddleware(cast(DelegationClient, client), cast(Any, None), specs)
    theirs = AsyncSubAgentMiddleware(async_subagents=specs)

    assert [(t.name, t.description, t.args_schema) for t in ours.tools] == [
        (t.name, t.description, t.args_schema) for t in theirs.tools
    ]


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ({"headers": {"x": "y"}}, {}, r"subagents: async subagent 'bg' has no 'url'.*\['headers'\]"),
        ({"update_strategy": "enqueue"}, {}, "subagents: .*update_strategy='enqueue'"),
        ({"mode": "fork"}, {}, "subagents: .*mode='fork'"),
        ({"graph_id": "astrologer"}, {}, "subagents: .*graph_id 'astrologer' names no registry subagent"),
        ({}, {"interrupt_on": {"write_file": True}}, "interrupt_on: async subagent 'bg' runs 'researcher'"),
    ],
)
def test_what_the_pools_cannot_do_is_refused_at_build_time_naming_the_argument(
    spec: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    client = BackgroundClient()
    with pytest.raises(UnsupportedArgumentError, match=message):
        create_orchestrator(
            ScriptedModel(messages=iter([])),
            subagents=cast(Any, [*SUBAGENTS, {**BACKGROUND, **spec}]),
            settings=client.settings,
            client=cast(DelegationClient, client),
            **options,
        )


def test_agent_protocol_specs_pass_through_and_do_not_mix_with_pooled_ones() -> None:
    client = BackgroundClient()
    remote = {"name": "far", "description": "on a server", "graph_id": "agent", "url": "http://127.0.0.1:9"}
    agent = create_orchestrator(
        ScriptedModel(messages=iter([])),
        subagents=cast(Any, [*SUBAGENTS, remote]),
        settings=client.settings,
        client=cast(DelegationClient, client),
    )
    assert "start_async_task" in _tool_names(agent)  # deepagents' own

    with pytest.raises(UnsupportedArgumentError, match=r"subagents: .*cannot be mixed"):
        create_orchestrator(
            ScriptedModel(messages=iter([])),
            subagents=cast(Any, [*SUBAGENTS, remote, BACKGROUND]),
            settings=client.settings,
            client=cast(DelegationClient, client),
        )


def test_an_agent_with_only_async_subagents_has_no_task_tool_and_they_run_registry_types() -> None:
    client = BackgroundClient(hold=True)
    settings = client.settings.model_copy(update={"subagents": "tests.unit.test_middleware:SUBAGENTS"})
    agent = create_orchestrator(
        ScriptedModel(
            messages=iter([AIMessage(content="", tool_calls=[_start()]), AIMessage(content="done")])
        ),
        subagents=cast(Any, [BACKGROUND]),  # `researcher` comes from the registry
        settings=settings,
        client=cast(DelegationClient, client),
    )

    tools = _tool_names(agent)
    assert "task" not in tools
    assert "start_async_task" in tools
    agent.invoke(
        {"messages": [HumanMessage(content="go")]},
        {"configurable": {"thread_id": THREAD}},
        context={"researcher:depth": 2, "tenant": "acme"},
    )
    [started] = client.started.values()
    assert started.subagent_type == "researcher"
    assert started.context == {"tenant": "acme", "depth": 2}
