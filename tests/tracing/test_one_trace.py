"""One LangSmith trace across machines: the runs the real langsmith SDK posts, from this
process (the main agent) and from a real worker (its subagents), form the tree deepagents
makes in one process, in the caller's project, with the caller's tags and metadata."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from deepagents import create_deep_agent
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator import create_orchestrator
from tests.integration.conftest import scripted, task_call
from tests.parity.agents import ANALYST, GATEKEEPER, REVERSER
from tests.support.trace_capture import CapturedRun, TraceCapture
from tests.support.waiting import eventually
from tests.tracing.conftest import CALLER_PROJECT, Traced

TURN = [
    task_call("t1", "analyst", "count the words of this short sentence"),
    task_call("t2", "reverser", "reverse these three words"),
]
SUBAGENTS = [ANALYST, REVERSER]
TOOLS = {"analyst": "count_words", "reverser": "reverse_words", "gatekeeper": "count_words"}
# LangGraph's bookkeeping runs, which differ with how a graph was compiled, not where it ran.
INTERNAL = frozenset({"ChannelWrite", "RunnableSequence"})


def _config(traced: Traced, thread_id: str) -> RunnableConfig:
    return {
        "callbacks": [traced.tracer()],
        "tags": ["nightly"],
        "metadata": {"team": "search", "not json": object()},
        "configurable": {"thread_id": thread_id},
    }


def _finished_subagents(
    capture: TraceCapture, names: set[str], trace_id: str | None = None
) -> list[CapturedRun]:
    """The subagent root runs under `task` runs once each has ended, with its model and tool
    runs in: the worker's runs arrive in batches, after the caller's."""
    found: list[CapturedRun] = []

    def settled() -> bool:
        found[:] = [
            child
            for task in capture.named("task")
            if trace_id is None or task.trace_id == trace_id
            for child in capture.children(task)
            if child.name in names and child.fields.get("end_time")
        ]
        tools_done = all(
            any(run.name == TOOLS[sub.name] and run.fields.get("end_time") for run in _subtree(capture, sub))
            for sub in found
        )
        return {run.name for run in found} == names and tools_done

    assert eventually(settled, 30), "\n".join(_rendered(capture))
    return found


def _subtree(capture: TraceCapture, run: CapturedRun) -> list[CapturedRun]:
    runs = [run]
    for child in capture.children(run):
        runs.extend(_subtree(capture, child))
    return runs


def _rendered(capture: TraceCapture) -> list[str]:
    return [
        line
        for root in capture.runs()
        if root.parent_id is None
        for line in capture.render(root, skip=INTERNAL)
    ]


def _main_root(capture: TraceCapture, trace_id: str) -> CapturedRun:
    (root,) = [run for run in capture.runs() if run.id == trace_id]
    return root


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_a_turn_of_delegations_is_one_trace_with_each_subagent_under_its_task_run(
    traced: Traced, mode: str
) -> None:
    agent = create_orchestrator(
        scripted(TURN, "done"), subagents=[ANALYST, REVERSER], settings=traced.settings
    )
    thread_id = f"trace-{uuid.uuid4().hex[:8]}"
    given: Any = {"messages": [{"role": "user", "content": "start"}]}
    config = _config(traced, thread_id)
    if mode == "ainvoke":
        asyncio.run(agent.ainvoke(given, config))
    elif mode == "stream":  # subgraphs: the workers publish each step, and the trace is the same
        assert any(namespace for namespace, _ in agent.stream(given, config, subgraphs=True))
    else:
        agent.invoke(given, config)
    traced.client.flush()

    subagents = _finished_subagents(traced.capture, {"analyst", "reverser"})
    trace_ids = {run.trace_id for run in traced.capture.runs()}
    assert len(trace_ids) == 1, "\n".join(_rendered(traced.capture))
    root = _main_root(traced.capture, trace_ids.pop())
    assert root.parent_id is None
    for subagent in subagents:
        runs = _subtree(traced.capture, subagent)
        assert {run.run_type for run in runs} >= {"llm", "tool", "chain"}
        # The worker's runs are the caller's: its project, tags and metadata, and taskforce's own.
        assert {run.project for run in runs} == {CALLER_PROJECT}
        assert "nightly" in subagent.tags
        metadata = subagent.metadata
        assert metadata["team"] == "search"
        assert "not json" not in metadata
        assert metadata["thread_id"] == thread_id
        assert metadata["ls_agent_type"] == "subagent"
        assert metadata["taskforce_attempt"] == 1
        assert str(metadata["taskforce_worker"]).startswith("traced0.")
        assert str(metadata["taskforce_delegation_id"]).startswith(f"{thread_id}:t")
    print("\n".join(traced.capture.render(root, skip=INTERNAL)))


def _task_subtrees(capture: TraceCapture) -> dict[str, list[str]]:
    """Each `task` run's subtree, by the subagent it ran, as indented names."""
    return {
        child.name: capture.render(task, skip=INTERNAL)
        for task in capture.named("task")
        for child in capture.children(task)
    }


@pytest.mark.parametrize("call", ["invoke", "ainvoke"])
def test_the_tree_under_each_task_run_is_the_one_deepagents_makes_in_process(
    traced: Traced, call: str
) -> None:
    """Under `invoke` deepagents runs subagents sync (their middleware's sync hooks), under
    `ainvoke` async: workers run them the way their main agent was called."""
    given: Any = {"messages": [{"role": "user", "content": "start"}]}

    def run(agent: Any, name: str) -> None:
        config = _config(traced, f"{name}-{uuid.uuid4().hex[:8]}")
        if call == "ainvoke":
            asyncio.run(agent.ainvoke(given, config))
        else:
            agent.invoke(given, config)
        traced.client.flush()
        _finished_subagents(traced.capture, {"analyst", "reverser"})

    run(create_deep_agent(scripted(TURN, "done"), subagents=SUBAGENTS), "in-process")
    expected = _task_subtrees(traced.capture)
    traced.capture.clear()

    run(
        create_orchestrator(scripted(TURN, "done"), subagents=[ANALYST, REVERSER], settings=traced.settings),
        "remote",
    )

    assert _task_subtrees(traced.capture) == expected


def test_a_resumed_approval_joins_the_trace_of_the_run_that_resumed_it(traced: Traced) -> None:
    agent = create_orchestrator(
        scripted([task_call("g1", "gatekeeper", "count: one two three")], "done"),
        subagents=[GATEKEEPER],
        settings=traced.settings,
        checkpointer=InMemorySaver(),
    )
    thread_id = f"approval-{uuid.uuid4().hex[:8]}"
    config = _config(traced, thread_id)
    first = agent.invoke({"messages": [{"role": "user", "content": "start"}]}, config)
    assert first.get("__interrupt__"), first
    resumed: Any = Command(resume={"decisions": [{"type": "approve"}]})
    agent.invoke(resumed, config)
    traced.client.flush()

    assert eventually(lambda: len({run.trace_id for run in traced.capture.runs()}) == 2, 30)
    roots = [run for run in traced.capture.runs() if run.parent_id is None and run.project == CALLER_PROJECT]
    second = max(roots, key=lambda run: str(run.fields.get("start_time")))
    (subagent,) = _finished_subagents(traced.capture, {"gatekeeper"}, trace_id=second.id)
    # The part after the answer ran on a worker, under the `task` run of the resumed invoke.
    assert subagent.metadata["taskforce_delegation_id"].endswith(":r0")
    assert any(run.name == "count_words" for run in _subtree(traced.capture, subagent))
