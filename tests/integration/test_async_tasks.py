"""Async subagents on real workers: a background task runs while the main agent goes on, a
follow-up continues the subagent's conversation, a cancel stops a running one."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import redis
from langchain_core.messages import HumanMessage, ToolCall
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import create_orchestrator
from orchestrator.delegation.checks import NO_WORKER_GRACE_S
from orchestrator.delegation.client import DelegationClient
from shared.celery_app import create_celery_app
from tests.integration.agents import SUBAGENTS, TICKS, TICKS_PREFIX
from tests.integration.conftest import Cluster, scripted, task_call, tool_messages

pytestmark = pytest.mark.integration

INSPECTOR = next(spec for spec in SUBAGENTS if spec["name"] == "inspector")
BACKGROUND = [
    {"name": "bg-sleeper", "description": "naps in the background", "graph_id": "sleeper"},
    {"name": "bg-inspector", "description": "inspects in the background", "graph_id": "inspector"},
    {"name": "bg-ticker", "description": "ticks in the background", "graph_id": "ticker"},
]
_T = TypeVar("_T")


class Conversation:
    """One main-agent thread, invoked turn by turn: each invoke scripts the main model anew,
    so later turns can name the task ids earlier ones returned."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.saver = InMemorySaver()
        self.config: Any = {"configurable": {"thread_id": f"async-{uuid.uuid4().hex[:8]}"}}
        self.client = DelegationClient(create_celery_app(cluster.settings), cluster.settings)

    def finished(self, run_id: str) -> bool:
        """Whether the delegation of this run has reported, read as the tools read it."""
        return self.client.peek([run_id]).get(run_id) is not None

    def say(self, *turns: list[ToolCall] | str) -> dict[str, Any]:
        agent = create_orchestrator(
            scripted(*turns),
            subagents=[INSPECTOR, *BACKGROUND],  # type: ignore[list-item]
            settings=self.cluster.settings,
            checkpointer=self.saver,
        )
        state: dict[str, Any] = agent.invoke({"messages": [HumanMessage(content="go on")]}, self.config)
        return state


def _tool(name: str, call_id: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def _eventually(read: Callable[[], _T | None], timeout_s: float = 20.0) -> _T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing after {timeout_s} s")


def test_a_background_task_runs_while_the_main_agent_goes_on(cluster: Cluster) -> None:
    talk = Conversation(cluster)
    start = [_tool("start_async_task", "s1", description="nap on it", subagent_type="bg-sleeper")]
    state = talk.say(start, [task_call("t1", "inspector", "meanwhile this")], "started")
    [task] = state["async_tasks"].values()
    assert task["status"] == "running"
    messages = tool_messages(state)
    assert messages["s1"].content == f"Launched async subagent. task_id: {task['task_id']}"
    # The main agent's own delegation came back while the background one still ran.
    assert messages["t1"].artifact["status"] == "ok"

    _eventually(lambda: talk.finished(task["run_id"]))
    state = talk.say([_tool("check_async_task", "c1", task_id=task["task_id"])], "checked")

    checked = json.loads(str(tool_messages(state)["c1"].content))
    assert checked["status"] == "success"
    assert checked["thread_id"] == task["task_id"]
    seen = json.loads(checked["result"])
    assert seen["pid"] in cluster.worker_pids
    assert seen["messages"][-1] == ["human", "nap on it"]
    assert state["async_tasks"][task["task_id"]]["status"] == "success"


def test_a_follow_up_continues_the_subagents_conversation(cluster: Cluster) -> None:
    talk = Conversation(cluster)
    start = [_tool("start_async_task", "s1", description="look at the logs", subagent_type="bg-inspector")]
    [task] = talk.say(start, "started")["async_tasks"].values()
    _eventually(lambda: talk.finished(task["run_id"]))

    update = [_tool("update_async_task", "u1", task_id=task["task_id"], message="now the metrics")]
    state = talk.say(update, "updated")
    assert tool_messages(state)["u1"].content == f"Updated async subagent. task_id: {task['task_id']}"
    follow_up = state["async_tasks"][task["task_id"]]["run_id"]
    assert follow_up != task["run_id"]
    _eventually(lambda: talk.finished(follow_up))

    state = talk.say([_tool("check_async_task", "c1", task_id=task["task_id"])], "checked")
    seen = json.loads(json.loads(str(tool_messages(state)["c1"].content))["result"])
    kinds = [kind for kind, _ in seen["messages"]]
    assert kinds == ["system", "human", "ai", "human"]
    assert seen["messages"][1] == ["human", "look at the logs"]
    assert json.loads(seen["messages"][2][1])["messages"][-1] == ["human", "look at the logs"]
    assert seen["messages"][3] == ["human", "now the metrics"]


def test_cancel_stops_a_running_task_for_good(cluster: Cluster) -> None:
    talk = Conversation(cluster)
    description = f"tick away {uuid.uuid4().hex[:6]}"
    start = [_tool("start_async_task", "s1", description=description, subagent_type="bg-ticker")]
    [task] = talk.say(start, "started")["async_tasks"].values()
    store = redis.Redis.from_url(cluster.settings.redis_url or "")

    def ticks() -> int:
        return int(store.get(TICKS_PREFIX + description) or 0)

    _eventually(lambda: ticks() >= 2)
    state = talk.say([_tool("cancel_async_task", "x1", task_id=task["task_id"])], "cancelled")
    assert tool_messages(state)["x1"].content == f"Cancelled async subagent task: {task['task_id']}"

    # The worker stops the run at its next lease renewal (a quarter of the lease).
    time.sleep(cluster.settings.lease / 4 + 2)
    stopped_at = ticks()
    time.sleep(2)
    assert ticks() == stopped_at < TICKS
    state = talk.say([_tool("check_async_task", "c1", task_id=task["task_id"])], "checked")
    assert json.loads(str(tool_messages(state)["c1"].content)) == {
        "status": "cancelled",
        "thread_id": task["task_id"],
    }
    assert not store.exists(f"{cluster.settings.queue_prefix}:dlg:{task['run_id']}")


def test_a_task_no_worker_serves_fails_naming_the_queue(cluster: Cluster) -> None:
    talk = Conversation(cluster)
    unserved = {"name": "bg-writer", "description": "writes memos", "graph_id": "memo-writer"}
    agent = create_orchestrator(
        scripted([_tool("start_async_task", "s1", description="a memo", subagent_type="bg-writer")], "ok"),
        subagents=[unserved],  # type: ignore[list-item]
        settings=cluster.settings,
        checkpointer=talk.saver,
    )
    [task] = agent.invoke({"messages": [HumanMessage(content="go")]}, talk.config)["async_tasks"].values()

    time.sleep(NO_WORKER_GRACE_S + 1)  # workers announce their queues within this grace
    state = talk.say([_tool("check_async_task", "c1", task_id=task["task_id"])], "checked")

    checked = json.loads(str(tool_messages(state)["c1"].content))
    assert checked["status"] == "error"
    queue = f"{cluster.settings.queue_prefix}.memo-writer"
    assert f"no live worker consumes queue {queue!r}" in checked["error"]
