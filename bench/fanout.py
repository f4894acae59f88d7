"""One model turn with N parallel `task` calls: taskforce on local worker pools against deepagents
running the same subagents in-process, at its default and at its best, in the same run.

    python -m bench.fanout            # every case, 3 repeats (about 6 minutes)
    python -m bench.fanout --quick    # 1 repeat, without the 1,000-delegation case

Cases: subagents that wait one second (a model call's latency) at N = 100 and 1,000, and
subagents that spend 200 ms of CPU at N = 10. deepagents runs the tool calls of one turn on a
thread pool whose size is LangGraph's `max_concurrency` (default: `min(32, cores + 4)`); tuned,
it gets `max_concurrency=N`, under `invoke` and under `ainvoke`. taskforce runs on its embedded
Redis (a spare port, never a shared server) with its default workers, and for 1,000 with the
workers the README documents for that size. Every figure is a wall time from `invoke` to the
answer, median and p95 of the repeats; the ideal is the subagents' own time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from deepagents import create_deep_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, isolated_settings, load_text, test_subagents
from orchestrator import create_orchestrator
from orchestrator.batch_display import percentile
from orchestrator.embedded import local_cluster
from shared.settings import Settings


@dataclass(frozen=True)
class Case:
    title: str
    subagent: str
    count: int
    ideal_s: float
    workers: int | None = None
    """taskforce's worker processes and slots for this case; unset, the defaults."""
    concurrency: int | None = None
    slow_default: bool = False
    """deepagents' default would take minutes here: estimated, not run."""


CASES = [
    Case("100 × 1 s wait", "sleeper", 100, 1.0),
    Case("1,000 × 1 s wait", "sleeper", 1000, 1.0, workers=2, concurrency=500, slow_default=True),
    Case("10 × 200 ms CPU", "burner", 10, 0.2 * 10 / (os.cpu_count() or 1)),
]


class _Turns(GenericFakeChatModel):
    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self


def _main_model(case: Case) -> _Turns:
    calls = [
        {"name": "task", "args": {"description": f"job {n}", "subagent_type": case.subagent}, "id": f"c{n}"}
        for n in range(case.count)
    ]
    return _Turns(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="done")]))


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _deepagents(case: Case, *, tuned: bool, asynchronous: bool) -> float:
    agent = create_deep_agent(_main_model(case), subagents=test_subagents(case.subagent))
    given = {"messages": [HumanMessage(content="go")]}
    config: dict[str, Any] = {"max_concurrency": case.count} if tuned else {}
    if asynchronous:
        return _timed(lambda: asyncio.run(agent.ainvoke(given, config)))
    return _timed(lambda: agent.invoke(given, config))


def _taskforce(case: Case, settings: Settings) -> float:
    agent = create_orchestrator(_main_model(case), settings=settings)
    return _timed(lambda: agent.invoke({"messages": [HumanMessage(content="go")]}))


def _cell(times: list[float]) -> str:
    if not times:
        return "-"
    return f"{statistics.median(times):.2f} s (p95 {percentile(times, 95):.2f})"


def _settings(case: Case) -> Settings:
    values: dict[str, Any] = {"subagents": TEST_REGISTRY, "general_purpose": False}
    if case.workers is not None:
        values["workers"] = case.workers
    if case.concurrency is not None:
        values["worker_concurrency"] = case.concurrency
    return isolated_settings(**values)


def main(quick: bool) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150)
    repeats = 1 if quick else 3
    cases = [case for case in CASES if not (quick and case.slow_default)]
    load_before = os.getloadavg()
    table = Table(title=f"One model turn, N parallel task calls, {os.cpu_count()} cores, {repeats} repeat(s)")
    for column in (
        "case",
        "deepagents default",
        "deepagents tuned invoke",
        "deepagents tuned ainvoke",
        "taskforce",
        "vs tuned",
        "efficiency",
    ):
        table.add_column(column, justify="right")
    for case in cases:
        settings = _settings(case)
        with local_cluster(settings) as live:
            _taskforce(Case("warm-up", case.subagent, 4, 0.0), live)  # the workers' subagent cache
            results: dict[str, list[float]] = {"default": [], "invoke": [], "ainvoke": [], "taskforce": []}
            for _ in range(repeats):
                if not case.slow_default:
                    results["default"].append(_deepagents(case, tuned=False, asynchronous=False))
                results["invoke"].append(_deepagents(case, tuned=True, asynchronous=False))
                if not case.slow_default:  # its sync models share one small executor under ainvoke
                    results["ainvoke"].append(_deepagents(case, tuned=True, asynchronous=True))
                results["taskforce"].append(_taskforce(case, live))
        best_tuned = min(
            statistics.median(times) for times in (results["invoke"], results["ainvoke"]) if times
        )
        ours = statistics.median(results["taskforce"])
        workers = f"{live.workers}×{live.worker_concurrency}"
        table.add_row(
            case.title,
            _cell(results["default"]) if results["default"] else "skipped (minutes)",
            _cell(results["invoke"]),
            _cell(results["ainvoke"]) if results["ainvoke"] else "skipped (minutes)",
            f"{_cell(results['taskforce'])} [{workers}]",
            f"{best_tuned / ours:.2f}×",
            f"{case.ideal_s / ours:.0%}",
        )
    console.print(table)
    console.print(
        "vs tuned: the faster tuned deepagents median over taskforce's; efficiency: the ideal "
        f"(the subagents' own time on every core) over taskforce's. Load {load_text(load_before)} "
        f"before, {load_text(os.getloadavg())} after."
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
