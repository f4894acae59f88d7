"""A batch traced as a user runs it: `taskforce batch` in its own process with the standard
`LANGSMITH_*` variables gives one trace per item, each item's subagents under its `task` runs,
marked with the batch and item they ran for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.embedded import worker_environment
from tests.support.trace_capture import CapturedRun
from tests.support.waiting import eventually
from tests.tracing.conftest import CALLER_PROJECT, REGISTRY, Traced

ITEMS = {
    "first": "Ask the analyst subagent:\n- count the words of this short sentence",
    "second": "Ask the analyst subagent:\n- count these four words\n- and count these too",
}


def test_each_batch_item_is_one_trace_with_its_subagents_under_its_task_runs(
    traced: Traced, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": id, "prompt": prompt}) + "\n" for id, prompt in ITEMS.items()))
    results = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "orchestrator", "batch", str(batch), "--out", str(results)]
    env = worker_environment(traced.settings) | traced.capture.environment(CALLER_PROJECT)
    finished = subprocess.run(
        [*command, "--subagents", REGISTRY, "--workers", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert {line["id"]: line["status"] for line in lines} == {"first": "ok", "second": "ok"}

    expected = {"first": 1, "second": 2}

    def subagents_by_item() -> dict[str, list[CapturedRun]]:
        found: dict[str, list[CapturedRun]] = {}
        for task in traced.capture.named("task"):
            for child in traced.capture.children(task):
                if child.name == "analyst" and child.fields.get("end_time"):
                    found.setdefault(str(child.metadata.get("taskforce_item_id")), []).append(child)
        return found

    assert eventually(
        lambda: {item: len(runs) for item, runs in subagents_by_item().items()} == expected, 30
    ), {item: len(runs) for item, runs in subagents_by_item().items()}
    roots = [run for run in traced.capture.runs() if run.parent_id is None]
    assert len(roots) == len(ITEMS)
    trace_of_item = {str(root.metadata["taskforce_item_id"]): root.trace_id for root in roots}
    assert len(set(trace_of_item.values())) == len(ITEMS)
    (batch_id,) = {str(root.metadata["taskforce_batch_id"]) for root in roots}
    for item, subagents in subagents_by_item().items():
        for subagent in subagents:
            assert subagent.trace_id == trace_of_item[item]
            assert subagent.project == CALLER_PROJECT
            assert subagent.metadata["taskforce_batch_id"] == batch_id
            assert subagent.metadata["thread_id"] == f"{batch_id}:{item}:1"
