"""A batch SIGKILLed midway and run again with the same results file: nothing that finished is
redone, the delegations that were out are re-attached (every subagent body runs exactly once),
the bad lines are named, and the results file ends complete, one line per good item."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from orchestrator import create_orchestrator
from orchestrator.checkpoints import SQLITE_FILE
from orchestrator.embedded import worker_environment, worker_pool
from shared.settings import Settings
from tests.faults.support import REGISTRY, RedisProcess, fault_settings, runs, wait_for

pytestmark = pytest.mark.faults

GOOD = 47
BAD_LINES = {
    11: "this is not JSON",
    23: json.dumps({"id": "item-3", "prompt": "a second item-3"}),
    37: json.dumps({"id": "extra", "prompt": "hi", "priority": 1}),
}


def _task(number: int) -> str:
    return f"sleep=0.4 item {number}"


def _write_batch(path: Path) -> None:
    good = iter(range(GOOD))
    lines = []
    for line_number in range(1, GOOD + len(BAD_LINES) + 1):
        if line_number in BAD_LINES:
            lines.append(BAD_LINES[line_number])
        else:
            number = next(good)
            prompt = f"Ask the counted subagent:\n- {_task(number)}"
            lines.append(json.dumps({"id": f"item-{number}", "prompt": prompt}))
    path.write_text("\n".join(lines) + "\n")


def _batch(env: dict[str, str], batch: Path, out: Path) -> subprocess.Popen[str]:
    command = ["-m", "orchestrator", "batch", str(batch), "--out", str(out), "--max-runs", "4"]
    return subprocess.Popen(
        [sys.executable, *command, "--subagents", REGISTRY, "--workers", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _started(settings: Settings) -> int:
    return sum(1 for n in range(GOOD) if runs(settings, _task(n)))


def _finished(out: Path) -> dict[str, dict[str, object]]:
    if not out.exists():
        return {}
    lines = (json.loads(line) for line in out.read_text().splitlines() if line.endswith("}"))
    return {line["id"]: line for line in lines}


def test_a_killed_batch_reruns_to_completion_without_redoing_anything(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    batch, out = tmp_path / "batch.jsonl", tmp_path / "results.jsonl"
    _write_batch(batch)
    env = worker_environment(settings)
    with worker_pool(settings, tmp_path, 1):
        first = _batch(env, batch, out)

        def midway() -> bool:
            finished = len(_finished(out))
            return finished >= 12 and _started(settings) > finished

        wait_for(midway, 120, "a dozen items to finish, and more to be running")
        first.send_signal(signal.SIGKILL)
        first.communicate()  # waits, and closes its pipes
        kept = _finished(out)
        started = _started(settings)
        print(f"batch killed after {len(kept)} items finished, {started} started")

        second = _batch(env, batch, out)
        stdout, stderr = second.communicate(timeout=300)

    assert second.returncode == 1, stdout + stderr  # the bad lines
    for line_number, _ in BAD_LINES.items():
        assert f"line {line_number}:" in stderr, stderr
    assert "id 'item-3' already used on line 4" in stderr
    assert f"{len(kept)} (already ok" in stdout, stdout
    results = _finished(out)
    assert sorted(results) == sorted(f"item-{n}" for n in range(GOOD))
    assert len(out.read_text().splitlines()) == GOOD  # compacted: one line per id
    assert all(result["status"] == "ok" for result in results.values())
    for item_id, result in kept.items():
        assert results[item_id]["thread_id"] == result["thread_id"]
    # Finished items were not redone, and those out at the kill were re-attached, not re-sent.
    counts = {n: runs(settings, _task(n)) for n in range(GOOD)}
    redone = {n: (count, results[f"item-{n}"]) for n, count in counts.items() if count != 1}
    assert not redone, json.dumps(redone)
    assert started > len(kept)
    # Each thread holds one run: resuming never fed an item's prompt in twice.
    with SqliteSaver.from_conn_string(str(settings.data_dir / SQLITE_FILE)) as saver:
        agent = create_orchestrator(
            settings=settings.model_copy(update={"subagents": REGISTRY}), checkpointer=saver
        )
        for result in results.values():
            messages = agent.get_state({"configurable": {"thread_id": result["thread_id"]}}).values[
                "messages"
            ]
            assert [m.type for m in messages].count("human") == 1, messages
