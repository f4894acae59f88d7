"""The delegation middleware inside a real deepagents graph, against an in-memory client: what
it sends, when, and what it never sends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt
from redis.exceptions import ConnectionError as RedisConnectionError

from orchestrator import create_orchestrator
from orchestrator.delegation.client import DelegationClient
from orchestrator.delegation.task_tool import _merge_handles
from shared.schemas import Delegation, Report
from shared.settings import Settings
from tests.support.models import ScriptedModel

SUBAGENTS = [
    {"name": "researcher", "description": "researches", "system_prompt": "p", "tools": [], "model": "offline"}
]


class StubClient:
    """Answers every delegation at once and records what the middleware asked of it."""

    def __init__(self, *, refuse: bool = False) -> None:
        # No general-purpose subagent: deepagents would run it on the main agent's model, a
        # scripted one no worker can import (orchestrator.parity).
        self.settings = Settings(
            redis_url="redis://stub",
            files_url="memory://middleware",
            general_purpose=False,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.refuse = refuse
        self.events: list[tuple[str, str]] = []
        self.send_threads: list[str] = []
        self.futures: dict[str, Future[Report]] = {}

    def send_all(self, delegations: Sequence[Delegation]) -> list[Future[Report]]:
        return [self.send(delegation) for delegation in delegations]

    def file_under_current_run(self, delegations: Sequence[Delegation]) -> None:
        self.events.extend(("traced", d.description) for d in delegations if d.caller.traced)

    def send(self, delegation: Delegation) -> Future[Report]:
        if self.refuse:
            raise RedisConnectionError("connection refused")
        self.send_threads.append(threading.current_thread().name)
        if delegation.id not in self.futures:
            self.events.append(("send", delegation.description))
            future: Future[Report] = Future()
            future.set_result(
                Report(
                    delegation_id=delegation.id,
                    subagent_type=delegation.subagent_type,
                    status="ok",
                    summary=f"did {delegation.description}",
                )
            )
            self.futures[delegation.id] = future
        return self.futures[delegation.id]

    def wait(self, delegation: Delegation) -> Report:
        self.events.append(("wait", delegation.description))
        return self.send(delegation).result()

    async def await_report(self, delegation: Delegation) -> Report:
        self.events.append(("wait", delegation.description))
        return (await asyncio.to_thread(self.send, delegation)).result()

    def collect(self, delegation_ids: Iterable[str]) -> None:
        self.events.extend(("collect", key) for key in delegation_ids)

    def cancel(self, delegation_ids: Iterable[str]) -> None:
        self.events.extend(("cancel", key) for key in delegation_ids)

    def sent(self) -> list[str]:
        return [what for event, what in self.events if event == "send"]


def _call(call_id: str, description: object, subagent_type: str = "researcher") -> ToolCall:
    return ToolCall(
        name="task",
        args={"description": description, "subagent_type": subagent_type},
        id=call_id,
        type="tool_call",
    )


def _agent(client: StubClient, *turns: list[ToolCall] | str, **options: Any) -> Any:
    messages = [
        AIMessage(content=t) if isinstance(t, str) else AIMessage(content="", tool_calls=t) for t in turns
    ]
    return create_orchestrator(
        ScriptedModel(messages=iter(messages)),
        subagents=cast(Any, SUBAGENTS),
        settings=client.settings,
        client=cast(DelegationClient, client),
        **options,
    )


def _tool_messages(state: dict[str, Any]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def test_a_turn_is_sent_whole_before_any_call_waits_and_malformed_calls_are_not_sent() -> None:
    client = StubClient()
    calls = [
        _call("a", "first"),
        _call("b", 42),  # the tool schema refuses it
        _call("c", "third", subagent_type="nobody"),
        _call("d", "fourth"),
    ]
    state = _agent(client, calls, "done").invoke({"messages": [HumanMessage(content="go")]})

    assert client.sent() == ["first", "fourth"]
    first_wait = next(i for i, (event, _) in enumerate(client.events) if event == "wait")
    assert [event for event, _ in client.events[:first_wait]] == ["send", "send"]
    messages = _tool_messages(state)
    assert messages["a"].content == "did first"
    assert messages["b"].status == "error"
    assert "does not exist" in str(messages["c"].content)
    assert messages["d"].content == "did fourth"
    # Answered delegations are collected from Redis once their reports are in the messages.
    assert len([event for event, _ in client.events if event == "collect"]) == 2


def test_task_needing_approval_sends_nothing_before_it_is_approved() -> None:
    client = StubClient()
    agent = _agent(
        client, [_call("a", "risky")], "done", interrupt_on={"task": True}, checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "hitl-1"}}

    paused = agent.invoke({"messages": [HumanMessage(content="go")]}, config)
    assert "__interrupt__" in paused
    assert client.sent() == []

    agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    assert client.sent() == ["risky"]


def test_an_edited_call_runs_only_as_the_reviewer_edited_it() -> None:
    client = StubClient()
    agent = _agent(
        client, [_call("a", "original")], "done", interrupt_on={"task": True}, checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "hitl-2"}}
    agent.invoke({"messages": [HumanMessage(content="go")]}, config)

    edited = {"name": "task", "args": {"description": "edited", "subagent_type": "researcher"}}
    state = agent.invoke(Command(resume={"decisions": [{"type": "edit", "edited_action": edited}]}), config)

    assert client.sent() == ["edited"]
    assert "did edited" in str(_tool_messages(state)["a"].content)


def test_a_rejected_call_is_never_sent() -> None:
    client = StubClient()
    agent = _agent(
        client, [_call("a", "unwanted")], "done", interrupt_on={"task": True}, checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "hitl-3"}}
    agent.invoke({"messages": [HumanMessage(content="go")]}, config)

    agent.invoke(Command(resume={"decisions": [{"type": "reject", "message": "no"}]}), config)
    assert client.sent() == []


@tool
def pause() -> str:
    """Wait for a human, interrupting the run."""
    return str(interrupt("continue?"))


def test_resuming_a_thread_sends_nothing_twice() -> None:
    client = StubClient()
    turn = [_call("a", "once"), ToolCall(name="pause", args={}, id="p", type="tool_call")]
    agent = _agent(client, turn, "done", tools=[pause], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "resume-1"}}

    assert "__interrupt__" in agent.invoke({"messages": [HumanMessage(content="go")]}, config)
    state = agent.invoke(Command(resume="yes"), config)

    assert client.sent() == ["once"]
    assert _tool_messages(state)["a"].content == "did once"


def test_when_jobs_cannot_be_sent_each_call_reports_it_and_the_run_goes_on() -> None:
    client = StubClient(refuse=True)
    state = _agent(client, [_call("a", "one"), _call("b", "two")], "carried on").invoke(
        {"messages": [HumanMessage(content="go")]}
    )

    messages = _tool_messages(state)
    assert sorted(messages) == ["a", "b"]
    for message in messages.values():
        assert message.status == "error"
        assert "could not send the delegation" in str(message.content)
    assert state["messages"][-1].content == "carried on"


def test_under_ainvoke_sends_happen_off_the_event_loop() -> None:
    client = StubClient()
    agent = _agent(client, [_call("a", "first"), _call("b", "second")], "done")

    async def run() -> tuple[dict[str, Any], str]:
        state = await agent.ainvoke({"messages": [HumanMessage(content="go")]})
        return state, threading.current_thread().name

    state, loop_thread = asyncio.run(run())

    assert client.sent() == ["first", "second"]
    assert loop_thread not in client.send_threads
    assert {m.content for m in _tool_messages(state).values()} == {"did first", "did second"}


@pytest.mark.parametrize("thread_id", [None, "t-1"])
def test_the_tool_call_finds_the_job_after_model_sent(thread_id: str | None) -> None:
    client = StubClient()
    config = {"configurable": {"thread_id": thread_id}} if thread_id else {}
    _agent(client, [_call("a", "only")], "done").invoke({"messages": [HumanMessage(content="go")]}, config)

    assert client.sent() == ["only"]
    assert not [event for event, _ in client.events if event == "cancel"]


QUESTION = {
    "action_requests": [{"name": "send_email", "args": {"to": "bob"}, "description": "send?"}],
    "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "reject"]}],
}


class PausingClient(StubClient):
    """A subagent that pauses for approval once per delegation the orchestrator starts, and
    finishes when resumed: what a worker reports for an `interrupt_on` subagent."""

    def __init__(self) -> None:
        super().__init__()
        self.resumed: list[Delegation] = []

    def send(self, delegation: Delegation) -> Future[Report]:
        if delegation.id not in self.futures and delegation.resumes is not None:
            self.resumed.append(delegation)
        future = super().send(delegation)
        if delegation.resumes is None:
            paused = Report(
                delegation_id=delegation.id,
                subagent_type=delegation.subagent_type,
                status="interrupted",
                summary="waiting",
                interrupts=({"id": "sub-1", "value": QUESTION},),  # type: ignore[arg-type]
            )
            future = Future()
            future.set_result(paused)
            self.futures[delegation.id] = future
        return future


@pytest.mark.parametrize("invoke", ["invoke", "ainvoke"])
def test_a_paused_subagent_asks_the_caller_and_its_answer_resumes_it(invoke: str) -> None:
    client = PausingClient()
    agent = _agent(client, [_call("a", "mail bob")], "done", checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"pause-{invoke}"}}

    def run(given: Any) -> Any:
        if invoke == "ainvoke":
            return asyncio.run(agent.ainvoke(given, config))
        return agent.invoke(given, config)

    paused = run({"messages": [HumanMessage(content="go")]})
    [question] = paused["__interrupt__"]
    assert question.value == QUESTION  # the very payload deepagents' in-process subagent raises
    assert client.resumed == []

    finished = run(Command(resume={question.id: {"decisions": [{"type": "approve"}]}}))

    [resumed] = client.resumed
    first = client.futures[resumed.resumes or ""].result()
    assert resumed.id == f"{first.delegation_id}:r0"
    assert resumed.resume == {"sub-1": {"decisions": [{"type": "approve"}]}}
    assert _tool_messages(finished)["a"].content == "did mail bob"
    assert finished["messages"][-1].content == "done"
    collected = [what for event, what in client.events if event == "collect"]
    assert collected == [first.delegation_id, resumed.id]


def test_handles_merge_without_touching_the_state_they_were_merged_into() -> None:
    current: dict[str, Any] = {"call-1": {"delegation_id": "d1"}, "call-2": {"delegation_id": "d2"}}
    merged = _merge_handles(current, {"call-1": None, "call-3": {"delegation_id": "d3"}, "call-9": None})

    assert merged == {"call-2": {"delegation_id": "d2"}, "call-3": {"delegation_id": "d3"}}
    assert list(current) == ["call-1", "call-2"]  # LangGraph may still hold the value merged into
    assert _merge_handles(None, None) == {}
