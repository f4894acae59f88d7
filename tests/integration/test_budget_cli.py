"""Budgets from the command line, as an operator sets them for a nightly batch: each item's
budget stops its delegations once its main agent has spent it, the batch's adds up every
item's spending, and the summary says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.embedded import worker_environment
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

ITEMS = {
    "first": "Ask the analyst subagent:\n- count the words of this short sentence",
    "second": "Ask the analyst subagent:\n- count these four words\n- and count these too",
}


def test_item_budgets_stop_each_items_delegations_and_the_batch_budget_sums_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps({"id": id, "prompt": prompt}) + "\n" for id, prompt in ITEMS.items()))
    results = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "orchestrator", "batch", str(batch), "--out", str(results)]
    budgets = ["--item-max-tokens", "1", "--max-tokens", "1000000"]

    finished = subprocess.run(
        [*command, *budgets, "--workers", "0"],
        env=worker_environment(cluster.settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = finished.stdout + finished.stderr
    assert finished.returncode == 1, output
    lines = {line["id"]: line for line in map(json.loads, results.read_text().splitlines())}
    assert {id: line["status"] for id, line in lines.items()} == {"first": "failed", "second": "failed"}
    for id, line in lines.items():
        # The offline main model spent the item's one token on its first call; no subagent ran.
        assert [d["status"] for d in line["delegations"]] == ["budget_exhausted"] * len(
            ITEMS[id].split("\n- ")[1:]
        )
        assert f":{id} spent" in line["error"]
        assert line["usage"]["input_tokens"] > 0
    spent_by_items = sum(
        line["usage"]["input_tokens"] + line["usage"]["output_tokens"] for line in lines.values()
    )
    (budget_row,) = [row for row in finished.stdout.splitlines() if "budget" in row and "batch:" in row]
    assert f"spent {spent_by_items:,} of 1,000,000 tokens" in budget_row
