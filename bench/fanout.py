"""One model turn with N parallel `task` calls: taskforce on local worker pools against deepagents
running the same subagents in-process, at its default and at its best, in the same run.

    python -m bench.fanout            # every case, 3 repeats, and the plot (about 5 minutes)
    python -m bench.fanout --quick    # 1 repeat, N = 10 and 100 and the CPU case, no plot

Cases: subagents that wait one second (a model call's latency) at N = 10, 100, 300 and 1,000,
and subagents that spend 200 ms of CPU at N = 10. deepagents runs the tool calls of one turn on
a thread pool whose size is LangGraph's `max_concurrency` (default: `min(32, cores + 4)`);
tuned, it gets `max_concurrency=N`, under `invoke` and under `ainvoke` (skipped where it would
take minutes, as the default is). taskforce runs on its embedded Redis (a spare port, never a
shared server) as docs/configuration.md ("Sizing workers") advises: for subagents that wait,
two workers on the threads pool with the default 64 slots each up to 128 delegations and enough
slots for the whole turn above that (N / 2 each); for subagents that compute, one worker on the
prefork pool with a child per core. Every figure is a wall time from `invoke` to the answer,
median and p95 of the repeats; the ideal is the subagents' own time spread over every core. The
full run draws the wait cases against N into `docs/benchmarks-fanout.png`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepagents import create_deep_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, isolated_settings, load_text, loop_cpu_ms, task_calls, test_subagents
from orchestrator import create_orchestrator
from orchestrator.cli.batch_view import percentile
from orchestrator.embedded import local_cluster
from shared.settings import Settings, WorkerPool
from tests.support.models import ScriptedModel


@dataclass(frozen=True)
class Case:
    title: str
    subagent: str
    count: int
    ideal_s: float
    slow_default: bool = False
    """deepagents' default and `ainvoke` would take minutes here: not run."""
    target: str = ""
    pool: WorkerPool = "threads"

    @property
    def waits(self) -> bool:
        return self.subagent == "sleeper"


CORES = os.cpu_count() or 1
DEFAULT_SLOTS = 64
CASES = [
    Case("10 × 1 s wait", "sleeper", 10, 1.0),
    Case("100 × 1 s wait", "sleeper", 100, 1.0, target="≤ 1.15 s"),
    Case("300 × 1 s wait", "sleeper", 300, 1.0, slow_default=True),
    Case("1,000 × 1 s wait", "sleeper", 1000, 1.0, slow_default=True, target="≥ 1.5× tuned"),
    Case("10 × 200 ms CPU", "burner", 10, 0.2 * 10 / CORES, target="≥ 1.8× tuned", pool="prefork"),
]
QUICK_CASES = [case for case in CASES if case.count <= 100]
PLOT = Path("docs/benchmarks-fanout.png")


def _main_model(case: Case) -> ScriptedModel:
    calls = task_calls(case.subagent, [f"job {n}" for n in range(case.count)])
    return ScriptedModel(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="done")]))


def _timed(run: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _deepagents(case: Case, *, tuned: bool, asynchronous: bool) -> float:
    agent = create_deep_agent(_main_model(case), subagents=test_subagents(case.subagent))
    given: Any = {"messages": [HumanMessage(content="go")]}  # the agent's input type, as a dict
    config: RunnableConfig = {"max_concurrency": case.count} if tuned else {}
    if asynchronous:
        return _timed(lambda: asyncio.run(agent.ainvoke(given, config)))
    return _timed(lambda: agent.invoke(given, config))


def _taskforce(case: Case, settings: Settings) -> float:
    agent = create_orchestrator(_main_model(case), settings=settings)
    return _timed(lambda: agent.invoke({"messages": [HumanMessage(content="go")]}))


def _cell(times: list[float]) -> str:
    if not times:
        return ""
    return f"{statistics.median(times):.2f} s (p95 {percentile(times, 95):.2f})"


def _settings(case: Case) -> Settings:
    """The advice of docs/configuration.md, "Sizing workers": for subagents that wait, threads,
    enough slots for the turn; for subagents that compute, one prefork child per core."""
    values: dict[str, Any] = {"subagents": TEST_REGISTRY, "general_purpose": False}
    if case.pool == "prefork":
        values.update(workers=1, worker_pool="prefork", worker_concurrency=CORES)
    else:
        values.update(workers=2, worker_concurrency=max(DEFAULT_SLOTS, -(-case.count // 2)))
    return isolated_settings(**values)


@dataclass
class Results:
    case: Case
    workers: str
    times: dict[str, list[float]] = field(default_factory=dict)
    loop_ms: list[float] = field(default_factory=list)
    """`bench.common.loop_cpu_ms` before and after the case: how fast the cores were."""

    def median(self, side: str) -> float | None:
        return statistics.median(self.times[side]) if self.times.get(side) else None

    @property
    def best_tuned(self) -> float:
        return min(t for t in (self.median("invoke"), self.median("ainvoke")) if t is not None)


def _run(case: Case, repeats: int) -> Results:
    settings = _settings(case)
    with local_cluster(settings) as live:
        _taskforce(Case("warm-up", case.subagent, 4, 0.0), live)  # the workers' subagent cache
        results = Results(
            case, f"{live.workers}×{live.worker_concurrency} {live.worker_pool}", loop_ms=[loop_cpu_ms()]
        )
        times = results.times
        for _ in range(repeats):
            if not case.slow_default:
                times.setdefault("default", []).append(_deepagents(case, tuned=False, asynchronous=False))
            times.setdefault("invoke", []).append(_deepagents(case, tuned=True, asynchronous=False))
            if not case.slow_default:  # its sync models share one small executor under ainvoke
                times.setdefault("ainvoke", []).append(_deepagents(case, tuned=True, asynchronous=True))
            times.setdefault("taskforce", []).append(_taskforce(case, live))
        results.loop_ms.append(loop_cpu_ms())
    return results


def _verdict(results: Results) -> str:
    case, ours = results.case, results.median("taskforce") or 0.0
    if not case.target:
        return ""
    if case.target.startswith("≤"):
        met = ours <= float(case.target.split()[1])
    else:
        met = results.best_tuned / ours >= float(case.target.split()[1].rstrip("×"))
    return f"{case.target}: {'PASS' if met else 'BELOW'}"


def _table(all_results: list[Results], repeats: int) -> Table:
    table = Table(title=f"One model turn, N parallel task calls, {CORES} cores, {repeats} repeat(s)")
    for column in (
        "case",
        "deepagents default",
        "deepagents tuned invoke",
        "deepagents tuned ainvoke",
        "taskforce",
        "vs tuned",
        "efficiency",
        "target",
        "fixed loop",
    ):
        table.add_column(column, justify="right")
    for results in all_results:
        ours = results.median("taskforce") or 0.0
        table.add_row(
            results.case.title,
            _cell(results.times.get("default", [])) or "not run (minutes)",
            _cell(results.times["invoke"]),
            _cell(results.times.get("ainvoke", [])) or "not run (minutes)",
            f"{_cell(results.times['taskforce'])} [{results.workers}]",
            f"{results.best_tuned / ours:.2f}×",
            f"{results.case.ideal_s / ours:.0%}",
            _verdict(results),
            " / ".join(f"{ms:.0f}" for ms in results.loop_ms) + " ms",
        )
    return table


def _plot(all_results: list[Results], path: Path) -> None:
    """Wall time against N for the wait cases: each system's medians, and the ideal."""
    waits = [results for results in all_results if results.case.waits]
    figure = Figure(figsize=(7, 4.5), dpi=120)
    axes = figure.subplots()
    for side, label, style in (
        ("default", "deepagents, default", "o:"),
        ("invoke", "deepagents, max_concurrency=N", "s--"),
        ("taskforce", "taskforce, 2 local workers", "D-"),
    ):
        measured = [(r.case.count, r.median(side)) for r in waits]
        points = [(count, median) for count, median in measured if median is not None]
        axes.plot([count for count, _ in points], [median for _, median in points], style, label=label)
    counts = [r.case.count for r in waits]
    axes.plot(counts, [1.0] * len(counts), color="grey", linewidth=0.8, label="ideal (1 s)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("subagents delegated in one model turn (N), each waiting 1 s")
    axes.set_ylabel("wall time of the turn, s (median)")
    axes.set_title(f"One model turn, N parallel task calls ({CORES} cores, same run)")
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main(quick: bool) -> None:
    console = Console(width=None if sys.stdout.isatty() else 170)
    repeats = 1 if quick else 3
    load_before = os.getloadavg()
    all_results = [_run(case, repeats) for case in (QUICK_CASES if quick else CASES)]
    console.print(_table(all_results, repeats))
    console.print(
        "vs tuned: the faster tuned deepagents median over taskforce's; efficiency: the ideal "
        f"(the subagents' own time on every core) over taskforce's; fixed loop: the CPU time of "
        f"`bench.common.loop_cpu_ms` before / after the case (the faster, the faster the cores ran). Load "
        f"{load_text(load_before)} before, {load_text(os.getloadavg())} after."
    )
    if not quick:
        _plot(all_results, PLOT)
        console.print(f"plot: {PLOT}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
