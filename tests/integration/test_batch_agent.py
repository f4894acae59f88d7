"""A batch builds its main agent once and runs every item on it at once, where a build per item
cost every item the CPU of deepagents' middleware and a graph's compilation. Each item must
still run as its own: its thread, its context reaching its subagents, its delegations in its
result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph.state import CompiledStateGraph

from orchestrator.agent import create_orchestrator
from orchestrator.batch import run as batch
from tests.integration.conftest import Cluster

pytestmark = pytest.mark.integration

ITEMS = 6
BULLETS = 2


def test_a_batch_builds_one_main_agent_and_each_item_runs_as_its_own(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[dict[str, Any]] = []

    def counted(**arguments: Any) -> CompiledStateGraph[Any, Any, Any, Any]:
        builds.append(arguments)
        return create_orchestrator(**arguments)

    monkeypatch.setattr(batch, "create_orchestrator", counted)
    lines = [
        {
            "id": f"i{n}",
            "prompt": "Ask the researcher subagent:\n"
            + "\n".join(f"- item {n} check {b}" for b in range(BULLETS)),
            "context": {"tenant": f"tenant-{n}"},
        }
        for n in range(ITEMS)
    ]
    items, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    items.write_text("".join(json.dumps(line) + "\n" for line in lines))
    settings = cluster.settings.model_copy(update={"data_dir": tmp_path})

    outcome = batch.run_batch(settings, items, out, max_runs=3, max_delegations=1)

    assert len(builds) == 1, builds
    assert sorted(result.id for result in outcome.results) == [f"i{n}" for n in range(ITEMS)]
    for result in outcome.results:
        assert result.status == "ok", result
        assert result.thread_id == f"{outcome.batch_id}:{result.id}:1"
        assert len(result.delegations) == BULLETS, result
        # The researcher shows the context it got: this item's, through the one agent.
        seen = {json.loads(delegation.summary)["context"]["tenant"] for delegation in result.delegations}
        assert seen == {f"tenant-{result.id[1:]}"}, result
