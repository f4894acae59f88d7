"""A retried attempt in the one trace: the worker running a traced subagent is SIGKILLed and
the delegation finishes on another worker. Both attempts sit under the caller's one `task` run,
each marked with its attempt: the first cut off where the kill found it, the second finished."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.langchain import LangChainTracer

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from tests.faults.support import (
    RedisProcess,
    fault_settings,
    kill_process_group,
    running_on,
    runs,
    wait_for,
    worker_names,
)
from tests.integration.conftest import scripted, task_call
from tests.support.environment import exported
from tests.support.trace_capture import CapturedRun, TraceCapture

pytestmark = pytest.mark.faults

TASK = "sleep=5 a traced job"
PROJECT = "retried-project"


def _attempts(capture: TraceCapture) -> dict[int, CapturedRun]:
    """The `counted` subagent's root runs under the `task` run, by attempt."""
    return {
        int(child.metadata["taskforce_attempt"]): child
        for task in capture.named("task")
        for child in capture.children(task)
        if child.name == "counted"
    }


def test_each_attempt_of_a_handed_over_delegation_is_under_the_same_task_run(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    with TraceCapture().serving() as capture, contextlib.ExitStack() as stack:
        with exported(capture.environment(PROJECT)):
            pids = stack.enter_context(worker_pool(settings, tmp_path, 2))
        pool = stack.enter_context(ThreadPoolExecutor(1))
        client = capture.client()
        agent = create_orchestrator(scripted([task_call("c0", "counted", TASK)], "done"), settings=settings)
        config: RunnableConfig = {
            "callbacks": [LangChainTracer(client=client, project_name=PROJECT)],
            "configurable": {"thread_id": "retried"},
        }
        running = pool.submit(agent.invoke, {"messages": [HumanMessage(content="go")]}, config)
        # The first attempt's runs are posted while it runs: kill its worker once they are in.
        wait_for(lambda: 1 in _attempts(capture) and runs(settings, TASK) == 1, 30, "the first attempt")
        (victim,) = running_on(settings).values()
        kill_process_group(worker_names(pids)[victim])
        state = running.result(timeout=90)
        client.flush()
        wait_for(
            lambda: 2 in _attempts(capture) and bool(_attempts(capture)[2].fields.get("end_time")),
            30,
            "the second attempt's runs",
        )
        attempts = _attempts(capture)
        (task_run,) = capture.named("task")
        print("\n".join(capture.render(task_run, skip=frozenset({"ChannelWrite"}))))

    (report,) = [m.artifact for m in state["messages"] if isinstance(m, ToolMessage)]
    assert report["status"] == "ok", report
    assert report["attempts"] == 2
    assert runs(settings, TASK) == 2
    assert sorted(attempts) == [1, 2]
    first, second = attempts[1], attempts[2]
    assert first.metadata["taskforce_worker"] == victim
    assert second.metadata["taskforce_worker"] == report["worker"] != victim
    assert first.metadata["taskforce_delegation_id"] == second.metadata["taskforce_delegation_id"]
    # The killed attempt never ended; the one that finished did, and both are the caller's.
    assert not first.fields.get("end_time")
    assert {first.trace_id, second.trace_id} == {task_run.trace_id}
    assert {first.project, second.project} == {PROJECT}
