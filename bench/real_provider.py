"""Delegations on a real provider client: the stock `openai:` model (langchain-openai's async
client) on two local workers, against the fake OpenAI-compatible provider answering in
`--latency` seconds, in a process of its own.

    python -m bench.real_provider                 # 3 runs of 200 delegations on the same workers
    python -m bench.real_provider --runs 1 --delegations 40

Each run is one `taskforce`-built main agent (itself on `openai:fake-main`) whose one model turn
delegates every item to the `writer` subagent (`openai:fake-writer`: a tool call, then an
answer, so two provider calls a delegation). Runs follow each other on the same workers, which is
where clients bound to a closed event loop used to fail. Printed per run: delegations ok and
failed (by error), wall time, delegations per second, and each delegation's own duration p50 /
p95 as its report gives it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from typing import Any

from langchain_core.messages import HumanMessage
from rich.console import Console
from rich.table import Table

from bench.common import isolated_settings, load_text
from orchestrator import create_orchestrator
from orchestrator.cli.batch_view import percentile
from orchestrator.embedded import local_cluster
from orchestrator.session import reports_in
from tests.provider.agents import MAIN_MODEL
from tests.support.fake_provider import FakeProvider

REGISTRY = "tests.provider.agents:SUBAGENTS"


def prompt(delegations: int) -> str:
    items = "\n".join(f"- write a note on topic {n}" for n in range(delegations))
    return f"Delegate every item below to the writer subagent.\n{items}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delegations", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the provider takes per call")
    options = parser.parse_args()
    console = Console(width=120)
    table = Table(
        "run",
        "ok",
        "failed",
        "errors",
        "wall",
        "delegations/s",
        "p50",
        "p95",
        "provider calls",
        title=f"{options.delegations} delegations per run, 2 workers, provider latency {options.latency:g} s",
    )
    with FakeProvider.in_subprocess(latency_s=options.latency) as provider:
        os.environ |= {"OPENAI_BASE_URL": provider.base_url, "OPENAI_API_KEY": "sk-bench"}
        settings = isolated_settings(
            subagents=REGISTRY, model=MAIN_MODEL, workers=2, worker_concurrency=options.delegations // 2 + 1
        )
        with local_cluster(settings) as live:
            for run in range(1, options.runs + 1):
                provider.reset()
                agent = create_orchestrator(settings=live)
                started = time.monotonic()
                given: Any = {"messages": [HumanMessage(content=prompt(options.delegations))]}
                state = agent.invoke(given, {"configurable": {"thread_id": f"bench-{run}"}})
                wall = time.monotonic() - started
                reports = reports_in(state["messages"])
                failed = [report for report in reports if report.status != "ok"]
                kinds = Counter(report.summary.split(":")[0][:40] for report in failed)
                durations = [report.duration_s for report in reports if report.status == "ok"]
                table.add_row(
                    str(run),
                    str(len(reports) - len(failed)),
                    str(len(failed)),
                    ", ".join(f"{count} × {kind}" for kind, count in kinds.most_common(3)) or "-",
                    f"{wall:.2f} s",
                    f"{len(reports) / wall:.1f}",
                    f"{percentile(durations, 50):.2f} s",
                    f"{percentile(durations, 95):.2f} s",
                    str(provider.stats().calls),
                )
    console.print(table)
    console.print(f"load average: {load_text(os.getloadavg())}")


if __name__ == "__main__":
    main()
