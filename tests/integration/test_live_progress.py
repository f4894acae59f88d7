"""What `taskforce run` shows while it waits: a line per running delegation with its subagent's
latest step, read from the progress its worker publishes."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from orchestrator.delegation.client import DelegationClient
from orchestrator.progress import DelegationTracker
from shared.celery_app import create_celery_app
from tests.faults.support import wait_for
from tests.integration.conftest import Cluster, scripted, task_call

pytestmark = pytest.mark.integration


def test_a_running_delegation_shows_its_latest_step_and_leaves_nothing_behind(cluster: Cluster) -> None:
    settings = cluster.settings
    client = DelegationClient(create_celery_app(settings), settings)
    tracker = DelegationTracker(client)
    task = f"sleep=3 live {uuid.uuid4().hex[:6]}"
    agent = create_orchestrator(
        scripted([task_call("c", "counted", task)], "done"),
        settings=settings,
        client=client,
        listener=tracker,
    )
    thread_id = f"live-{uuid.uuid4().hex[:8]}"
    run = threading.Thread(
        target=agent.invoke,
        args=({"messages": [HumanMessage(content="go")]}, {"configurable": {"thread_id": thread_id}}),
    )
    run.start()

    def shown() -> str:
        return "\n".join(line.plain for line in tracker.running_lines())

    wait_for(lambda: "calling run_counted" in shown(), 20, "the subagent's tool call to show")
    assert "counted" in shown()
    assert task[:20] in shown()
    run.join(30)
    client.close()

    assert shown() == ""
    published = redis.Redis.from_url(str(settings.redis_url)).scan_iter(
        f"{settings.queue_prefix}:progress:{thread_id}*"
    )
    assert list(published) == []
