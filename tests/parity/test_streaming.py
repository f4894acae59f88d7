"""`stream(..., subgraphs=True)`: a subagent's steps show under the `task` call's namespace, in
order, as deepagents shows its in-process subagents' — here from a worker process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from deepagents import create_deep_agent
from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import create_orchestrator
from tests.integration.conftest import scripted, task_call
from tests.parity.agents import ANALYST, REVERSER
from tests.parity.harness import ParityEnv

Seen = tuple[bool, str, list[tuple[str, str, list[str]]]]


def _shown(messages: list[BaseMessage]) -> list[tuple[str, str, list[str]]]:
    return [(m.type, str(m.content), [c["name"] for c in getattr(m, "tool_calls", [])]) for m in messages]


def _steps(chunks: list[tuple[tuple[str, ...], dict[str, Any]]]) -> list[Seen]:
    """(in a subagent?, node, messages) for every model turn and tool result, main or sub."""
    seen: list[Seen] = []
    for namespace, update in chunks:
        for node, values in update.items():
            if node in ("model", "tools") and isinstance(values, dict) and values.get("messages"):
                seen.append((bool(namespace), node, _shown(values["messages"])))
    return seen


def _stream(agent: Any, asynchronous: bool) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    given = {"messages": [HumanMessage(content="start")]}
    if not asynchronous:
        return list(agent.stream(given, stream_mode="updates", subgraphs=True))

    async def collect() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        return [chunk async for chunk in agent.astream(given, stream_mode="updates", subgraphs=True)]

    return asyncio.run(collect())


@pytest.mark.parametrize("asynchronous", [False, True], ids=["stream", "astream"])
def test_a_subagents_steps_stream_under_the_task_call_as_in_process(
    parity: ParityEnv, asynchronous: bool
) -> None:
    def turns() -> Any:
        return scripted([task_call("a", "analyst", "one two three")], "done")

    in_process = create_deep_agent(turns(), subagents=[ANALYST], backend=parity.deepagents_files.backend())
    on_workers = create_orchestrator(turns(), subagents=[ANALYST], settings=parity.settings)

    expected = _steps(_stream(in_process, asynchronous))
    seen = _steps(_stream(on_workers, asynchronous))

    assert [step for step in expected if step[0]] == [
        (True, "model", [("ai", "", ["count_words"])]),
        (True, "tools", [("tool", "3 words", [])]),
        (True, "model", [("ai", "analyst: 3 words", [])]),
    ]
    assert [step for step in seen if step[0]] == [step for step in expected if step[0]]
    assert [step[1] for step in seen] == [step[1] for step in expected]  # main and sub, in order


def test_parallel_delegations_stream_under_their_own_namespaces(parity: ParityEnv) -> None:
    agent = create_orchestrator(
        scripted([task_call("a", "analyst", "one two"), task_call("r", "reverser", "x y")], "done"),
        subagents=[ANALYST, REVERSER],
        settings=parity.settings,
    )

    chunks = _stream(agent, asynchronous=False)

    namespaces = {namespace for namespace, _ in chunks if namespace}
    assert len(namespaces) == 2
    answers = {
        str(m.content)
        for ns, update in chunks
        if ns
        for v in update.values()
        if isinstance(v, dict)
        for m in v.get("messages", [])
    }
    assert {"analyst: 2 words", "reverser: y x"} <= answers


def test_without_subgraphs_nothing_is_published(parity: ParityEnv) -> None:
    """Progress costs a delegation nothing unless the caller streams subagents: no step is kept
    (a replay would have deleted what it read; nothing read it here)."""
    agent = create_orchestrator(
        scripted([task_call("q", "analyst", "quiet please")], "done"),
        subagents=[ANALYST],
        settings=parity.settings,
    )

    chunks = list(agent.stream({"messages": [HumanMessage(content="start")]}, stream_mode="updates"))

    assert any("tools" in chunk for chunk in chunks)  # the report came back
    published = redis.Redis.from_url(str(parity.settings.redis_url)).scan_iter(
        f"{parity.settings.queue_prefix}:progress:*"
    )
    assert list(published) == []


def test_a_checkpointed_run_streams_its_subagents_too(parity: ParityEnv) -> None:
    """Under `durability="sync"` (what the CLI uses) the replay, which keeps no checkpoint,
    must not wait for one."""
    agent = create_orchestrator(
        scripted([task_call("a", "analyst", "one two three")], "done"),
        subagents=[ANALYST],
        settings=parity.settings,
        checkpointer=InMemorySaver(),
    )

    chunks = list(
        agent.stream(
            {"messages": [HumanMessage(content="start")]},
            {"configurable": {"thread_id": "streamed-and-kept"}},
            stream_mode="updates",
            subgraphs=True,
            durability="sync",
        )
    )

    assert [node for namespace, update in chunks if namespace for node in update] == [
        "model",
        "tools",
        "model",
    ]
