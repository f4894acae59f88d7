"""How long one model turn with N parallel `task` calls takes: taskforce on a local worker pool
versus deepagents running the same subagents in-process, both under plain `invoke`.

    python -m bench.fanout [N ...]     (default: 8 32 100)

Uses TASKFORCE_REDIS_URL when set, else the embedded Redis; starts its own workers.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from deepagents import create_deep_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, test_subagents
from orchestrator import create_orchestrator
from orchestrator.embedded import local_cluster
from shared.settings import Settings

# The integration tests' `sleeper`: a model that takes one second per call, which isolates the
# cost of delegating (queueing, rebuilding, reporting) from any real model's latency.
SLEEPER = test_subagents("sleeper")
MODEL_SECONDS = 1.0
WORKERS = 2
CONCURRENCY = 50


class _Turns(GenericFakeChatModel):
    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self


def _main_model(count: int) -> _Turns:
    calls = [
        {"name": "task", "args": {"description": f"job {n}", "subagent_type": "sleeper"}, "id": f"c{n}"}
        for n in range(count)
    ]
    return _Turns(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="done")]))


def _timed(agent: Any) -> float:
    started = time.monotonic()
    agent.invoke({"messages": [HumanMessage(content="go")]})
    return time.monotonic() - started


def main(counts: list[int]) -> None:
    console = Console()
    # No general-purpose: deepagents would run it on the scripted main model, workers cannot.
    settings = Settings(subagents=TEST_REGISTRY, worker_concurrency=CONCURRENCY, general_purpose=False)
    table = Table(
        title=f"{MODEL_SECONDS:g} s subagents, one model turn, plain invoke ({os.cpu_count()} cores)"
    )
    for column in (
        "delegations",
        "deepagents in-process",
        f"taskforce {WORKERS}×{CONCURRENCY} workers",
        "speed-up",
    ):
        table.add_column(column, justify="right")
    with local_cluster(settings, WORKERS) as live:
        _timed(create_orchestrator(_main_model(4), settings=live))  # warm the workers' subagent cache
        for count in counts:
            in_process = _timed(create_deep_agent(_main_model(count), subagents=SLEEPER))
            remote = _timed(create_orchestrator(_main_model(count), settings=live))
            table.add_row(str(count), f"{in_process:.2f} s", f"{remote:.2f} s", f"{in_process / remote:.1f}×")
    console.print(table)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [8, 32, 100])
