"""The paused-runs checkpointer is a LangGraph checkpointer: a deepagents graph that pauses for
approval on one saver resumes on another over the same Redis (another worker)."""

from __future__ import annotations

from typing import Any

import fakeredis
from deepagents import create_deep_agent
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.types import Command

from tests.support.models import ScriptedModel
from workers.paused_runs import RedisCheckpointSaver


@tool
def send_email(to: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def _agent(saver: RedisCheckpointSaver, *turns: AIMessage) -> Any:
    return create_deep_agent(
        ScriptedModel(messages=iter(turns)),
        [send_email],
        interrupt_on={"send_email": True},
        checkpointer=saver,
    )


def test_a_run_paused_on_one_saver_resumes_on_another_and_its_thread_can_be_deleted() -> None:
    server = fakeredis.FakeServer()
    first = RedisCheckpointSaver(fakeredis.FakeRedis(server=server), "tf")
    second = RedisCheckpointSaver(fakeredis.FakeRedis(server=server), "tf")
    config: RunnableConfig = {"configurable": {"thread_id": "dlg-1"}}

    ask = AIMessage(content="", tool_calls=[{"name": "send_email", "args": {"to": "bob"}, "id": "s1"}])
    paused = _agent(first, ask).invoke({"messages": [{"role": "user", "content": "mail bob"}]}, config)
    [question] = paused["__interrupt__"]
    assert question.value["action_requests"][0]["args"] == {"to": "bob"}

    # Another graph with another model: only Redis connects the two.
    approve: Command[Any] = Command(resume={question.id: {"decisions": [{"type": "approve"}]}})
    finished = _agent(second, AIMessage(content="emailed bob")).invoke(approve, config)

    assert [m.content for m in finished["messages"]][-2:] == ["sent to bob", "emailed bob"]
    assert len(list(second.list(config))) >= 3
    client = fakeredis.FakeRedis(server=server)
    assert all(0 < client.ttl(key) <= 7 * 24 * 3600 for key in client.keys("tf:paused:dlg-1:*"))
    second.delete_thread("dlg-1")
    assert client.keys("tf:paused:*") == []
    assert second.get_tuple(config) is None
