"""Async subagents: deepagents' own `AsyncSubAgentMiddleware`, talking to an Agent Protocol
server that runs the subagent in this process, against taskforce's, running it on the workers.

The same conversation on both sides, one invoke per step on a checkpointed thread: start a
task, check and list it, send a follow-up, check again. Compared: the tools the main model was
bound to (names, descriptions, schemas), its system prompts, every message (tool results
included) and the `async_tasks` state, with each side's task ids and timestamps, which are
made fresh on each side, replaced by placeholders. The subagent answers with the conversation
it was given, so the follow-up's answer shows it went on from the first run on both sides.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from deepagents import create_deep_agent
from deepagents.middleware import async_subagents
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    ToolCall,
    ToolMessage,
    convert_to_messages,
)
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import create_orchestrator
from orchestrator.delegation.client import DelegationClient
from shared.celery_app import create_celery_app
from tests.parity.agents import ANALYST, RECALLER
from tests.parity.harness import ParityEnv, RecordingModel, Run, comparable, main_tools, recording
from tests.support.models import tool_call

BACKGROUND: Any = {"name": "bg-recaller", "description": "recalls in the background", "graph_id": "recaller"}
SERVER_URL = "http://agent-protocol.test"
_TASK_ID = re.compile(r"task_id: (\S+)")


class TaskIdModel(RecordingModel):
    """The scripted main model, filling `{task_id}` in its tool calls with the task id the
    latest tool result named, as a real model would copy it."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        result = super()._generate(messages, *args, **kwargs)
        message = result.generations[0].message
        named = _TASK_ID.findall(" ".join(str(m.content) for m in messages if isinstance(m, ToolMessage)))
        if named and isinstance(message, AIMessage) and message.tool_calls:
            filled = {"{task_id}": named[-1]}
            calls = [
                {**call, "args": {key: filled.get(value, value) for key, value in call["args"].items()}}
                for call in message.tool_calls
            ]
            result.generations[0].message = AIMessage(content=message.content, tool_calls=calls)
        return result


class AgentProtocolServer:
    """The parts of the LangGraph SDK's sync client deepagents' tools call (`threads` and
    `runs`), serving one graph in this process: each run has finished by the time
    `runs.create` returns, and runs on its thread's messages plus its input, as on a server."""

    def __init__(self, graph: Any) -> None:
        self.threads = _Threads(self)
        self.runs = _Runs(self)
        self.graph = graph
        self.messages: dict[str, list[BaseMessage]] = {}
        self.created: dict[str, dict[str, Any]] = {}


class _Threads:
    def __init__(self, server: AgentProtocolServer) -> None:
        self._server = server

    def create(self, **_: Any) -> dict[str, Any]:
        thread_id = str(uuid.uuid4())
        self._server.messages[thread_id] = []
        return {"thread_id": thread_id}

    def get(self, *, thread_id: str) -> dict[str, Any]:
        values = {"messages": self._server.messages[thread_id]}
        return {"thread_id": thread_id, "status": "idle", "values": values}


class _Runs:
    def __init__(self, server: AgentProtocolServer) -> None:
        self._server = server

    def create(self, *, thread_id: str, input: dict[str, Any], **_: Any) -> dict[str, Any]:
        given = [*self._server.messages[thread_id], *convert_to_messages(input["messages"])]
        self._server.messages[thread_id] = self._server.graph.invoke({"messages": given})["messages"]
        run = {"run_id": str(uuid.uuid4()), "thread_id": thread_id, "status": "success"}
        self._server.created[run["run_id"]] = run
        return run

    def get(self, *, thread_id: str, run_id: str) -> dict[str, Any]:
        return self._server.created[run_id]

    def list(self, *, thread_id: str, limit: int = 10) -> list[dict[str, Any]]:
        runs = [run for run in self._server.created.values() if run["thread_id"] == thread_id]
        return list(reversed(runs))[:limit]


STEPS: list[list[list[ToolCall] | str]] = [
    [
        [tool_call("start_async_task", "s1", description="remember: apple", subagent_type="bg-recaller")],
        "started",
    ],
    [
        [tool_call("check_async_task", "c1", task_id="{task_id}")],
        [tool_call("list_async_tasks", "l1")],
        "checked",
    ],
    [[tool_call("update_async_task", "u1", task_id="{task_id}", message="which word?")], "updated"],
    [
        [tool_call("check_async_task", "c2", task_id="{task_id}")],
        [tool_call("list_async_tasks", "l2", status_filter="success")],
        "done",
    ],
]
"""One invoke per step, each with the main model's turns for it."""


@dataclass
class Side:
    name: str
    steps: list[Run]

    @property
    def final(self) -> dict[str, Any]:
        return self.steps[-1].final

    def task_ids(self) -> list[str]:
        return list(self.final.get("async_tasks", {}))


_runs = itertools.count()


def _run_side(side: str, env: ParityEnv, monkeypatch: pytest.MonkeyPatch) -> Side:
    thread_id = f"parity-async-{side}-{os.getpid()}-{next(_runs)}"
    config: Any = {"configurable": {"thread_id": thread_id}}
    saver = InMemorySaver()
    files = env.taskforce_files if side == "taskforce" else env.deepagents_files
    if side == "deepagents":
        recaller = create_deep_agent(
            RECALLER["model"], RECALLER["tools"], system_prompt=RECALLER["system_prompt"]
        )
        server = AgentProtocolServer(recaller)
        monkeypatch.setattr(async_subagents._ClientCache, "get_sync", lambda self, name: server)
    pool = DelegationClient(create_celery_app(env.settings), env.settings)
    steps: list[Run] = []
    for turns in STEPS:
        model = TaskIdModel(messages=recording(*turns).messages)
        if side == "taskforce":
            agent = create_orchestrator(
                model, subagents=[ANALYST, BACKGROUND], settings=env.settings, checkpointer=saver
            )
        else:
            remote: Any = {**BACKGROUND, "url": SERVER_URL}  # deepagents' AsyncSubAgent
            agent = create_deep_agent(
                model, subagents=[ANALYST, remote], backend=files.backend(), checkpointer=saver
            )
        result = agent.invoke({"messages": [HumanMessage(content="go on")]}, config)
        steps.append(Run(side, thread_id, [result], files, model))
        # On the server every run is over when it is created; on the workers, wait for it.
        tasks = result.get("async_tasks", {}).values()
        running = [task["run_id"] for task in tasks if task["status"] == "running"]
        deadline = time.monotonic() + 30
        while running and time.monotonic() < deadline and None in pool.peek(running).values():
            time.sleep(0.2)
    pool.close()
    return Side(side, steps)


def _normalized(side: Side, value: Any) -> Any:
    text = json.dumps(value, default=str)
    for index, task_id in enumerate(side.task_ids()):
        text = text.replace(task_id, f"<task {index}>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    return json.loads(text)


def _tasks(side: Side) -> Any:
    tasks = {key: {**task, "run_id": "<run>"} for key, task in side.final.get("async_tasks", {}).items()}
    return _normalized(side, tasks)


def test_async_tasks_match_deepagents_with_an_agent_protocol_server(
    parity: ParityEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    deepagents = _run_side("deepagents", parity, monkeypatch)
    taskforce = _run_side("taskforce", parity, monkeypatch)

    drop = not parity.settings.general_purpose
    for ours, theirs in zip(taskforce.steps, deepagents.steps, strict=True):
        assert main_tools(ours) == main_tools(theirs, drop_general_purpose=drop)
        assert ours.main_model.system_prompts() == theirs.main_model.system_prompts()
    messages = {side.name: _normalized(side, comparable(side.steps[-1])) for side in (taskforce, deepagents)}
    assert messages["taskforce"] == messages["deepagents"]
    assert _tasks(taskforce) == _tasks(deepagents)

    # Both agree, and on what was meant: the follow-up saw the first run's conversation.
    last = deepagents.steps[-1].messages
    results = {m.tool_call_id: str(m.content) for m in last if isinstance(m, ToolMessage)}
    answer = json.loads(json.loads(results["c2"])["result"])
    assert answer["asked"] == ["remember: apple", "which word?"]
    assert answer["answered_before"] == [json.dumps({"asked": ["remember: apple"], "answered_before": []})]
    assert [task["status"] for task in _tasks(taskforce).values()] == ["success"]
