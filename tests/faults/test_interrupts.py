"""Giving up: Ctrl-C of the CLI in both modes, and a queue that no live worker serves. Either
way the run ends within seconds and leaves no job queued or running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_environment, worker_pool
from tests.faults.support import (
    REGISTRY,
    RedisProcess,
    assert_nothing_left,
    fault_settings,
    leftovers,
    runs,
    wait_for,
)
from tests.integration.conftest import scripted, task_call
from tests.support.environment import without_settings

pytestmark = pytest.mark.faults

PROMPT = "Ask the counted subagent:\n- sleep=30 first\n- sleep=30 second\n"


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", PROMPT, "--subagents", REGISTRY, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _interrupt(cli: subprocess.Popen[str]) -> tuple[float, str]:
    """Ctrl-C; how long the CLI took to exit, and what it printed."""
    cli.send_signal(signal.SIGINT)
    sent = time.monotonic()
    output, _ = cli.communicate(timeout=30)
    return time.monotonic() - sent, output


@pytest.mark.parametrize("local_workers", [0, 1])
def test_ctrl_c_in_connected_mode_exits_at_once_and_cancels_every_job(
    server: RedisProcess, tmp_path: Path, local_workers: int
) -> None:
    """With no worker at all (the jobs wait in the queue), and with local workers running them."""
    settings = fault_settings(server, tmp_path)
    cli = _cli(worker_environment(settings), "--workers", str(local_workers))
    if local_workers:
        wait_for(lambda: runs(settings, "sleep=30 first") == 1, 60, "the first job to start")
    else:
        wait_for(lambda: len(leftovers(settings)["records"]) == 2, 60, "both jobs to be sent")

    took_s, output = _interrupt(cli)
    print(f"Ctrl-C, connected mode, {local_workers} local worker(s): exited in {took_s:.1f} s")

    assert cli.returncode == 130, output
    assert took_s < 5, output
    assert_nothing_left(settings)


def test_ctrl_c_in_embedded_mode_exits_at_once_and_stops_everything(tmp_path: Path) -> None:
    env = without_settings()
    env["TASKFORCE_DATA_DIR"] = str(tmp_path)
    cli = _cli(env)

    def workers() -> list[psutil.Process]:
        children = psutil.Process(cli.pid).children(recursive=True)
        return [child for child in children if "celery" in " ".join(child.cmdline())]

    wait_for(lambda: len(workers()) == 2, 60, "the embedded workers")
    time.sleep(5)  # ready, and running both jobs
    started = [child.pid for child in psutil.Process(cli.pid).children(recursive=True)]

    took_s, output = _interrupt(cli)
    print(f"Ctrl-C, embedded mode: exited in {took_s:.1f} s")

    assert cli.returncode == 130, output
    assert took_s < 5, output
    assert len(started) >= 3, output  # Redis and two workers
    alive = [
        p for p in started if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, [psutil.Process(p).cmdline() for p in alive]


def test_a_queue_no_live_worker_serves_fails_fast_naming_the_queue(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    # A worker serves every other type: only `counted` has nobody.
    queue = f"{settings.queue_prefix}.counted"
    with worker_pool(settings, tmp_path, 1, "--exclude-queues", queue):
        agent = create_orchestrator(
            scripted([task_call("c", "counted", "sleep=1 x"), task_call("i", "inspector", "hi")], "done"),
            settings=settings,
        )
        started = time.monotonic()
        state = agent.invoke({"messages": [HumanMessage(content="go")]})
        took_s = time.monotonic() - started
    print(f"unserved queue: error report after {took_s:.1f} s")

    reports = {m.tool_call_id: m.artifact for m in state["messages"] if isinstance(m, ToolMessage)}
    assert reports["i"]["status"] == "ok"
    assert reports["c"]["status"] == "error"
    assert f"no live worker consumes queue {queue!r}" in reports["c"]["summary"]
    assert f"taskforce worker -Q {queue}" in reports["c"]["summary"]
    assert took_s < 20
    assert runs(settings, "sleep=1 x") == 0
    assert_nothing_left(settings)
