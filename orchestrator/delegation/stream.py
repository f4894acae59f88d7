"""A worker subagent's steps, replayed into the caller's stream as deepagents shows an in-process
subagent's with `stream(..., subgraphs=True)`: under the `task` call's namespace, as updates of
the subagent's `model` and `tools` nodes, in the order they happened.

The replay is a small graph run inside the `task` call, which LangGraph nests under the call's
namespace like any subgraph, untraced: in LangSmith the worker's own runs stand there. Its
nodes are named after the subagent's and return the messages the worker published
(`shared.progress`); its edges wait for the next step, and it ends once the report is in and
every step is replayed. It keeps no checkpoint: the report in the main
agent's messages is what lasts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph
from langsmith.run_helpers import tracing_context

from shared.compat.langgraph import CONFIG_KEY_DURABILITY, CONFIG_KEY_STREAM
from shared.progress import RELAYED_NODES, ProgressReader, Step
from shared.schemas import Report

_REPLAY_CONFIG: RunnableConfig = {
    "recursion_limit": 100_000,  # far beyond any subagent's, whose own limit ends it first
    # Not the caller's durability: under "sync" LangGraph would wait for checkpoints of a graph
    # that keeps none (and passing `durability=` to a graph without a checkpointer warns).
    "configurable": {CONFIG_KEY_DURABILITY: "exit"},
}


def streams_subgraphs(config: RunnableConfig) -> bool:
    """The caller streams with `subgraphs=True`: LangGraph hands nested graphs its stream."""
    return CONFIG_KEY_STREAM in (config.get("configurable") or {})


class _Replay:
    def __init__(self, reader: ProgressReader, report: Future[Report]) -> None:
        self._reader = reader
        self._report = report
        self._steps: deque[Step] = deque()

    def next_node(self, _: Any) -> str:
        while not self._steps:
            if self._report.done():  # its steps were all published before it
                self._keep(self._reader.read(block=False))
                break
            self._keep(self._reader.read())
        return self._steps[0].node if self._steps else END

    def _keep(self, steps: list[Step]) -> None:
        """The subagent's own nodes; taskforce's waits are for the progress line alone."""
        self._steps.extend(step for step in steps if step.node in RELAYED_NODES)

    async def anext_node(self, state: Any) -> str:
        return await asyncio.to_thread(self.next_node, state)

    def step(self, _: Any) -> dict[str, Any]:
        return {"messages": self._steps.popleft().messages}

    async def astep(self, state: Any) -> dict[str, Any]:
        return self.step(state)

    def graph(self, name: str) -> Any:
        builder = StateGraph(MessagesState)
        route = RunnableLambda(self.next_node, afunc=self.anext_node)
        for node in RELAYED_NODES:
            builder.add_node(node, RunnableLambda(self.step, afunc=self.astep))
        for source in (START, *RELAYED_NODES):
            builder.add_conditional_edges(source, route, [*RELAYED_NODES, END])
        return builder.compile(checkpointer=False, name=name)


def _untraced() -> AbstractContextManager[None]:
    """The replay shows the subagent's steps in the stream, not in LangSmith: there its real
    runs come from the worker, under the same `task` run (`workers.tracing`)."""
    return tracing_context(enabled=False)


def replay(reader: ProgressReader, report: Future[Report], subagent_type: str) -> None:
    """Replay the steps until the report is in; call inside the `task` call."""
    graph = _Replay(reader, report).graph(subagent_type)
    with _untraced():
        graph.invoke({"messages": []}, _REPLAY_CONFIG)
    reader.forget()


async def areplay(reader: ProgressReader, report: Future[Report], subagent_type: str) -> None:
    graph = _Replay(reader, report).graph(subagent_type)
    with _untraced():
        await graph.ainvoke({"messages": []}, _REPLAY_CONFIG)
    await asyncio.to_thread(reader.forget)
