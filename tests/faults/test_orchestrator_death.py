"""The orchestrator dies: SIGKILLed mid-turn, its thread resumed from a checkpoint by a new
process, which re-attaches to the delegations already sent instead of sending them again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.embedded import worker_environment, worker_pool
from shared.ledger import as_text, open_ledger
from tests.faults.orchestrator_run import TASKS
from tests.faults.support import (
    RedisProcess,
    assert_nothing_left,
    fault_settings,
    runs,
    wait_for,
)

pytestmark = pytest.mark.faults


def test_a_killed_orchestrator_resumes_its_thread_without_sending_anything_twice(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    env = worker_environment(settings)
    command = [
        sys.executable,
        "-m",
        "tests.faults.orchestrator_run",
        str(tmp_path / "checkpoints.db"),
        "thread-r",
    ]
    with worker_pool(settings, tmp_path, 1):
        first = subprocess.Popen(
            [*command, "start"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for(
                lambda: all(runs(settings, task) == 1 for task in TASKS.values()), 60, "every job to start"
            )
        finally:
            first.kill()
            first.communicate()  # waits, and closes its pipes
        _, records = open_ledger(settings).snapshot(
            [as_text(key).rsplit(":dlg:", 1)[1] for key in open_ledger(settings).client.keys("*:dlg:*")]
        )
        assert len(records) == 3  # all sent; nobody collected them
        resumed = subprocess.run(
            [*command, "resume"], check=False, env=env, capture_output=True, text=True, timeout=120
        )

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    reports = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert sorted(reports) == sorted(TASKS)
    for call_id, task in TASKS.items():
        assert reports[call_id]["status"] == "ok", reports[call_id]
        assert reports[call_id]["attempts"] == 1
        assert runs(settings, task) == 1, task
    assert_nothing_left(settings)
