"""Redis goes away: killed with -9 and restarted (append-only, as production runs it) while
delegations run, and down while they are being sent. Either costs a delay, never a worker or a
second run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from tests.faults.support import (
    RedisProcess,
    assert_nothing_left,
    fault_settings,
    runs,
    wait_for,
)
from tests.integration.conftest import scripted, task_call

pytestmark = pytest.mark.faults


def _invoke(settings: object, tasks: list[str]) -> dict[str, dict[str, object]]:
    agent = create_orchestrator(
        scripted([task_call(f"c{n}", "counted", task) for n, task in enumerate(tasks)], "done"),
        settings=settings,  # type: ignore[arg-type]
    )
    state = agent.invoke({"messages": [HumanMessage(content="go")]})
    return {m.tool_call_id: m.artifact for m in state["messages"] if isinstance(m, ToolMessage)}


def _all_alive(pids: list[int]) -> bool:
    return all(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids
    )


def test_redis_killed_and_restarted_mid_run_costs_no_worker_and_no_second_run(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    tasks = [f"sleep=3 job {n}" for n in range(6)]
    with worker_pool(settings, tmp_path, 2) as pids, ThreadPoolExecutor(1) as pool:
        running = pool.submit(_invoke, settings, tasks)
        wait_for(lambda: all(runs(settings, t) == 1 for t in tasks), 30, "every job to start")
        server.kill9()
        killed = time.monotonic()
        time.sleep(1)
        server.start()
        reports = running.result(timeout=120)
        print(f"Redis kill -9 and restart: run finished {time.monotonic() - killed:.1f} s after the kill")
        # The workers are still serving: a new delegation after the restart runs.
        after = _invoke(settings, ["sleep=0 after the restart"])
        alive = _all_alive(pids)

    assert alive
    assert after["c0"]["status"] == "ok", after
    for n, task in enumerate(tasks):
        assert reports[f"c{n}"]["status"] == "ok", reports[f"c{n}"]
        assert runs(settings, task) == 1, task
    assert_nothing_left(settings)
    logs = "\n".join(log.read_text(errors="replace") for log in tmp_path.glob("worker-*.log"))
    assert "Unrecoverable error" not in logs


def test_sends_ride_out_a_redis_outage(server: RedisProcess, tmp_path: Path) -> None:
    settings = fault_settings(server, tmp_path)
    tasks = [f"sleep=1 sent during the outage {n}" for n in range(3)]
    with worker_pool(settings, tmp_path, 1) as pids, ThreadPoolExecutor(1) as pool:
        server.kill9()
        running = pool.submit(_invoke, settings, tasks)
        time.sleep(4)
        assert not running.done()
        server.start()
        restarted = time.monotonic()
        reports = running.result(timeout=120)
        print(f"sends through a 4 s outage: done {time.monotonic() - restarted:.1f} s after Redis came back")
        alive = _all_alive(pids)

    assert alive
    for n, task in enumerate(tasks):
        assert reports[f"c{n}"]["status"] == "ok", reports[f"c{n}"]
        assert runs(settings, task) == 1, task
    assert_nothing_left(settings)
