"""The orchestrating process's peak memory against the number of delegations in one model turn,
taskforce against deepagents in-process.

    python -m bench.memory            # N = 10, 100, 1,000, 10,000
    python -m bench.memory --quick    # N = 10, 100, 1,000 (deepagents up to 100)

Each measurement runs in a fresh Python process, so that its peak resident set size
(`ru_maxrss`) is its own: the process builds the agent, notes its resident size, runs one turn
of N `task` calls to the integration tests' `inspector` (which answers at once) and reports its
peak. Both sides run the turn's tool calls on 64 threads (`max_concurrency`). taskforce's
workers and Redis are other processes and not counted: what is measured is what a main agent's
host needs. Growth is the peak over the size before the turn; *since the last N* divides its
increase by the increase of N, the memory each further delegation costs while its report is
kept in the main agent's messages: a steady column means memory linear in the reports kept. At
10,000 the reports outgrow deepagents' summarization trigger (170,000 tokens), so the main
agent's history is summarized once (the scripted model answers the request).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

from deepagents import create_deep_agent
from langchain_core.messages import HumanMessage, ToolMessage
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, OneTurn, isolated_settings, load_text, task_calls, test_subagents
from orchestrator import create_orchestrator
from orchestrator.embedded import local_cluster

SIZES = (10, 100, 1000, 10_000)
QUICK_SIZES = (10, 100, 1000)
DEEPAGENTS_UP_TO = 10_000
QUICK_DEEPAGENTS_UP_TO = 100


def _main_model(count: int) -> OneTurn:
    return OneTurn(calls=task_calls("inspector", [f"job {n}" for n in range(count)]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(agent: Any, count: int) -> dict[str, float]:
    before = _rss_mb()
    result = agent.invoke({"messages": [HumanMessage(content="go")]}, {"max_concurrency": min(count, 64)})
    reports = [m for m in result["messages"] if isinstance(m, ToolMessage) and m.status == "success"]
    if len(reports) != count:
        raise SystemExit(f"{count - len(reports)} of {count} delegations did not report")
    return {"before": before, "peak": _peak_mb()}


def _child(side: str, count: int) -> None:
    """One measurement, in this fresh process; prints it as JSON."""
    if side == "deepagents":
        agent = create_deep_agent(_main_model(count), subagents=test_subagents("inspector"))
        print(json.dumps(_measure(agent, count)))
        return
    settings = isolated_settings(subagents=TEST_REGISTRY, general_purpose=False)
    with local_cluster(settings) as live:
        agent = create_orchestrator(_main_model(count), settings=live)
        print(json.dumps(_measure(agent, count)))


def _run_child(side: str, count: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", side, str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} at N={count} failed:\n{done.stderr[-2000:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def main(quick: bool) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150)
    sizes = QUICK_SIZES if quick else SIZES
    deepagents_up_to = QUICK_DEEPAGENTS_UP_TO if quick else DEEPAGENTS_UP_TO
    load_before = os.getloadavg()
    table = Table(title="Orchestrating process's peak RSS, one turn of N delegations (fresh process each)")
    for column in ("N", "side", "before the turn", "peak", "growth", "per delegation", "since the last N"):
        table.add_column(column, justify="right")
    last: dict[str, tuple[int, float]] = {}
    for count in sizes:
        for side in ("taskforce", "deepagents"):
            if side == "deepagents" and count > deepagents_up_to:
                table.add_row(f"{count:,}", side, "", "", "", "not run (minutes)", "")
                continue
            measured = _run_child(side, count)
            growth = measured["peak"] - measured["before"]
            since = ""
            if side in last:
                previous_count, previous_growth = last[side]
                since = f"{(growth - previous_growth) * 1024 / (count - previous_count):.1f} KB"
            last[side] = (count, growth)
            table.add_row(
                f"{count:,}",
                side,
                f"{measured['before']:.0f} MB",
                f"{measured['peak']:.0f} MB",
                f"{growth:.1f} MB",
                f"{growth * 1024 / count:.1f} KB",
                since,
            )
    console.print(table)
    console.print(f"Load {load_text(load_before)} before, {load_text(os.getloadavg())} after.")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--child"]:
        _child(arguments[1], int(arguments[2]))
    else:
        main(quick="--quick" in arguments)
