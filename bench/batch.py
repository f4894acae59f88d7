"""Throughput of `taskforce batch`, against deepagents running the same items in-process, measured
side by side in one run.

    python -m bench.batch [--items N] [--quick] [--max-runs N ...] [--workers N] [--concurrency N]

(default 200 items, max runs 4 and 16, 2 workers of 16 threads; --quick: 40 items)

Each item is one main-agent run of the deterministic `offline` model on a prompt naming the
integration tests' `inspector` and five bullet lines, so the model makes one turn of five
parallel `task` calls to that instant subagent and then answers: 200 items are 1,000
delegations. An instant subagent keeps a model's latency out of the figures, so what is left
is what running the items costs: the main agent's own steps and, for taskforce, the trip of
every delegation through Redis to a worker and back, and a checkpoint after every step.

taskforce runs the items through the public API, `orchestrator.batch.run.run_batch`, which is what
`taskforce batch` calls, against a private Redis and local workers (`local_cluster`), with a
fresh data directory for every batch so that each one starts on an empty SQLite checkpoint
file. Its wall time is the whole call (reading the input, every run, writing the results); its
item times are the results' `duration_s`. The benchmark ignores every TASKFORCE_* variable and
`.env`, so it never touches a shared Redis.

The baseline is deepagents' `create_deep_agent` with the same `inspector` spec object and the
same offline model, running the same items on a thread pool of the same size as `--max-runs`
(one thread per concurrent run), with the subagents in-process. It is given its best settings:
one agent built once for all items and no checkpointer. A second baseline row adds the SQLite
checkpointer that batch uses, with the same `durability="sync"`, so that the cost of
checkpointing can be told apart from the cost of distributing. Both sides first run a few
warm-up items, discarded, so that no row pays for imports or the workers' first build of the
subagent.

Beside the times, the table shows the CPU time spent during each row by this process and by its
children (the workers and Redis): on a machine of a few cores, CPU is what throughput is bought
with, and it shows which side of a distributed batch is the busy one.

Every item must finish `ok` with five successful delegations, on every side, before anything
is printed; otherwise the benchmark stops with an error, since a time of a failed run is a time
of something else. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepagents import create_deep_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Durability
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, isolated_settings, load_text, test_subagents
from orchestrator.batch.input import BatchItem, read_batch
from orchestrator.batch.results import ItemResult
from orchestrator.batch.run import run_batch
from orchestrator.checkpoints import open_checkpointer
from orchestrator.cli.batch_view import percentile
from orchestrator.embedded import local_cluster
from shared.models import make_model
from shared.settings import Settings

SUBAGENT = "inspector"
INSPECTOR = test_subagents(SUBAGENT)
DELEGATIONS = 5
ITEMS = 200
QUICK_ITEMS = 40
WARMUP_ITEMS = 8
MAX_RUNS = (4, 16)
WORKERS = 2
CONCURRENCY = 16
# A delegation that goes missing fails its item within GIVE_UP_S, not after the default hour.
GIVE_UP_S = 60.0

TASKFORCE = "taskforce batch"
DEEPAGENTS = "deepagents"
DEEPAGENTS_CHECKPOINTED = "deepagents + SQLite"


def _prompt(number: int) -> str:
    """What makes the offline model delegate DELEGATIONS bullets to the subagent it names."""
    bullets = "\n".join(f"- item {number}, check {n + 1}" for n in range(DELEGATIONS))
    return f"Ask the {SUBAGENT} subagent:\n{bullets}"


def _write_batch(path: Path, count: int, prefix: str) -> list[BatchItem]:
    """A batch file of `count` items, read back with batch's own reader so that both sides run
    exactly the items batch accepted."""
    with path.open("w", encoding="utf-8") as lines:
        for number in range(count):
            lines.write(json.dumps({"id": f"{prefix}{number:04d}", "prompt": _prompt(number)}) + "\n")
    batch = read_batch(path)
    if batch.rejected or len(batch.items) != count:
        raise SystemExit(f"the benchmark's own batch file was rejected: {batch.rejected}")
    return batch.items


def _children_cpu_s() -> float | None:
    """CPU seconds used so far by this process's live children, the embedded Redis and the
    workers, which `os.times` only counts once they have exited; None without Linux's /proc."""
    if not Path("/proc/self/stat").exists():
        return None
    me, total = os.getpid(), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command name in parentheses: state, ppid, ..., utime and stime at 11, 12.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _Spent:
    """Wall time, and the CPU time behind it: on 2 cores, CPU is what throughput is bought with,
    so it shows where distributing costs (this process, or the workers and Redis)."""

    wall_s: float
    here_cpu_s: float
    children_cpu_s: float | None


class _Stopwatch:
    def __init__(self) -> None:
        self._wall, self._cpu, self._children = time.perf_counter(), time.process_time(), _children_cpu_s()

    def stop(self) -> _Spent:
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu_s()
        spent_children = None if children is None or self._children is None else children - self._children
        return _Spent(wall - self._wall, cpu - self._cpu, spent_children)


@dataclass
class _Row:
    side: str
    max_runs: int
    spent: _Spent
    durations_s: list[float]

    @property
    def wall_s(self) -> float:
        return self.spent.wall_s

    @property
    def items(self) -> int:
        return len(self.durations_s)

    @property
    def items_per_s(self) -> float:
        return self.items / self.wall_s


class _NotOkError(Exception):
    """An item that did not finish `ok`: it stops the batch at once rather than after every other
    item has failed the same way (a lost worker costs each item a 10 s grace)."""


def _require_ok(result: ItemResult) -> None:
    statuses = [delegation.status for delegation in result.delegations]
    if result.status != "ok" or statuses != ["ok"] * DELEGATIONS:
        error = (result.error or "")[:300]
        raise _NotOkError(f"item {result.id}: {result.status}, delegations {statuses}, error: {error}")


def _taskforce(settings: Settings, batch_file: Path, scratch: Path, max_runs: int, label: str) -> _Row:
    """One `run_batch` over the whole file, into a new results file and a new data directory."""
    fresh = settings.model_copy(update={"data_dir": scratch / f"data-{label}"})
    results_path = scratch / f"results-{label}.jsonl"
    expected = len(read_batch(batch_file).items)
    gc.collect()
    stopwatch = _Stopwatch()
    try:
        outcome = run_batch(
            fresh,
            batch_file,
            results_path,
            max_runs=max_runs,
            max_delegations=DELEGATIONS,
            on_result=_require_ok,
        )
    except _NotOkError as error:
        raise SystemExit(f"taskforce batch (max runs {max_runs}) stopped: {error}") from None
    spent = stopwatch.stop()
    if outcome.rejected or outcome.skipped or len(outcome.results) != expected:
        raise SystemExit(
            f"taskforce batch (max runs {max_runs}): {len(outcome.results)} of {expected} items ran, "
            f"{outcome.skipped} skipped, rejected: {outcome.rejected}"
        )
    return _Row(TASKFORCE, max_runs, spent, [result.duration_s for result in outcome.results])


def _check_in_process(item: BatchItem, state: dict[str, Any]) -> None:
    """The same bar as batch's `ok`: every delegation answered successfully, then an answer."""
    messages = state["messages"]
    reports = [m for m in messages if isinstance(m, ToolMessage)]
    answered = isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls
    if len(reports) != DELEGATIONS or any(m.status != "success" for m in reports) or not answered:
        raise SystemExit(f"deepagents did not finish item {item.id} ok: {str(messages)[:1000]}")


def _deepagents(
    settings: Settings, items: Sequence[BatchItem], max_runs: int, data_dir: Path | None, label: str
) -> _Row:
    """The items on `max_runs` threads, one agent for all; checkpointed to a fresh SQLite file in
    `data_dir` as batch does when one is given, else not at all."""
    saver: AbstractContextManager[BaseCheckpointSaver[str] | None] = (
        open_checkpointer(settings.model_copy(update={"data_dir": data_dir}))
        if data_dir is not None
        else nullcontext()
    )
    with saver as checkpointer:
        agent = create_deep_agent(make_model(settings.model), subagents=INSPECTOR, checkpointer=checkpointer)
        # batch's durability; langgraph rejects any durability when there is no checkpointer.
        durability: Durability | None = "sync" if checkpointer is not None else None

        def run(item: BatchItem) -> float:
            config: RunnableConfig = {"configurable": {"thread_id": f"{label}:{item.id}"}}
            started = time.monotonic()
            state = agent.invoke(
                {"messages": [HumanMessage(content=item.prompt)]}, config, durability=durability
            )
            elapsed = time.monotonic() - started
            _check_in_process(item, state)
            return elapsed

        with ThreadPoolExecutor(max_runs, thread_name_prefix="bench-deepagents") as pool:
            gc.collect()
            stopwatch = _Stopwatch()
            durations = list(pool.map(run, items))
            spent = stopwatch.stop()
    side = DEEPAGENTS if data_dir is None else DEEPAGENTS_CHECKPOINTED
    return _Row(side, max_runs, spent, durations)


def _measure(settings: Settings, batch_file: Path, scratch: Path, max_runs: Sequence[int]) -> Iterator[_Row]:
    """For every max runs setting, the three sides one after the other, at the same load."""
    items = read_batch(batch_file).items
    for runs in max_runs:
        yield _taskforce(settings, batch_file, scratch, runs, f"taskforce-{runs}")
        yield _deepagents(settings, items, runs, None, f"deepagents-{runs}")
        yield _deepagents(settings, items, runs, scratch / f"data-deepagents-{runs}", f"deepagents-{runs}")


def _table(rows: list[_Row], workers: int, concurrency: int) -> Table:
    items = rows[0].items
    table = Table(
        title=f"{items} batch items × {DELEGATIONS} delegations to an instant subagent, offline model: "
        f"taskforce on {workers} workers × {concurrency} threads vs deepagents in-process "
        f"({os.cpu_count()} cores)"
    )
    for column in ("side", "max runs"):
        table.add_column(column, no_wrap=True)
    for column in (
        "items",
        "delegations",
        "wall time",
        "items/s",
        "delegations/s",
        "item p50",
        "item p95",
        "CPU here",
        "CPU workers, Redis",
        "vs best deepagents",
    ):
        table.add_column(column, justify="right")
    # The baseline at its best: its fastest max runs setting, whichever that was in this run.
    best = max(row.items_per_s for row in rows if row.side == DEEPAGENTS)
    for row in rows:
        table.add_row(
            row.side,
            str(row.max_runs),
            str(row.items),
            f"{row.items * DELEGATIONS:,}",
            f"{row.wall_s:.1f} s",
            f"{row.items_per_s:.1f}",
            f"{row.items_per_s * DELEGATIONS:.0f}",
            f"{percentile(row.durations_s, 50) * 1000:.0f} ms",
            f"{percentile(row.durations_s, 95) * 1000:.0f} ms",
            f"{row.spent.here_cpu_s:.1f} s",
            "—" if row.spent.children_cpu_s is None else f"{row.spent.children_cpu_s:.1f} s",
            f"{row.items_per_s / best:.2f}×",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--items", type=int, help=f"batch items (default {ITEMS}, {QUICK_ITEMS} with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ITEMS} items: a smoke run")
    parser.add_argument(
        "--max-runs",
        type=int,
        nargs="+",
        default=list(MAX_RUNS),
        help=f"runs at once, one row each (default {' '.join(map(str, MAX_RUNS))})",
    )
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"worker processes (default {WORKERS})")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"threads per worker (default {CONCURRENCY})"
    )
    args = parser.parse_args(argv)
    count = args.items or (QUICK_ITEMS if args.quick else ITEMS)

    console = Console(width=max(Console().width, 180))
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="taskforce-bench-batch-") as directory:
        scratch = Path(directory)
        settings = isolated_settings(
            model="offline",
            subagents=TEST_REGISTRY,
            worker_concurrency=args.concurrency,
            queue_timeout=GIVE_UP_S,
            delegation_timeout=GIVE_UP_S,
            data_dir=scratch / "data",
        )
        batch_file = scratch / "items.jsonl"
        _write_batch(batch_file, count, "item-")
        warmup_file = scratch / "warmup.jsonl"
        warmup = _write_batch(warmup_file, WARMUP_ITEMS, "warmup-")
        with local_cluster(settings, args.workers) as live:
            _taskforce(live, warmup_file, scratch, max(args.max_runs), "warmup")
            _deepagents(live, warmup, max(args.max_runs), None, "warmup")
            rows = list(_measure(live, batch_file, scratch, args.max_runs))
    load_after = os.getloadavg()

    console.print(_table(rows, args.workers, args.concurrency))
    console.print(
        "wall time: the whole run_batch call (taskforce) or thread pool (deepagents); item p50/p95: "
        "results' duration_s (taskforce) or each invoke; vs best deepagents: items/s over the "
        "fastest deepagents row without checkpoints; CPU: user + system time during the wall time, of "
        "this process (all its threads) and of its children (workers and Redis)"
    )
    console.print(
        f"ran {time.monotonic() - started:.0f} s; load average (1, 5, 15 min) "
        f"{load_text(load_before)} before, {load_text(load_after)} after"
    )


if __name__ == "__main__":
    main()
