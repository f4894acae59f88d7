"""How far one orchestrator scales: what a delegation costs the orchestrating process, the
workers and Redis, in CPU, Redis commands and bytes, and from those the hosts a number of
concurrent subagents needs; then workers pinned to cores, to show that they scale with cores.

    python -m bench.scaling            # turns of 1,000 delegations, 3 repeats (about 1.5 minutes)
    python -m bench.scaling --quick    # turns of 300, 1 repeat
    python -m bench.scaling --delegations 2000 --cores-per-host 16 --delegation-s 5
    python -m bench.scaling --without-task-events   # as where no Flower watches

Every measurement is one model turn of N `task` calls to the integration tests' `inspector`,
whose model answers at once, so that nothing but taskforce's own work is in the figures: the
main agent's turn, sending, the workers' runs of the subagent graph, the reports and the wake.
The benchmark starts its own Redis on a spare port (`local_cluster` without workers) and its
worker processes itself with `orchestrator.embedded.worker_pool`, the function `local_cluster`
starts them with, so that it knows their pids; it ignores every `TASKFORCE_*` variable and
`.env` and never touches a shared Redis.

Around each turn (`invoke`, the agent built beforehand) it reads:

- this process's CPU time (user + system, every thread: `psutil`), the orchestrator's;
- the CPU time of the worker processes and their children (`psutil`);
- the private Redis's `INFO`: `used_cpu_user + used_cpu_sys`, `total_net_input_bytes` and
  `total_net_output_bytes`, `total_reads_processed` (the requests Redis read off its clients'
  sockets: round trips, a pipeline or a script call being one), and `commandstats` (calls and
  microseconds per command);

and divides each difference by N. Sustained delegations per second is N over the turn's wall
time on this machine, where the orchestrator, the workers and Redis share the cores; what one
orchestrator process can sustain on a core of its own is 1 / its CPU per delegation (a Python
process runs on about one core, its GIL's). The hosts table turns the per-delegation CPU into
cores for a number of concurrent subagents, each taking `--delegation-s` of wall time per
delegation. The pinned run starts 1, 2 and 4 workers, each pinned to a core of its own (its
process and every thread it starts inherit the affinity it is forked with), where the machine
has the cores, with the orchestrator and Redis on the cores left over if any.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis
from langchain_core.messages import HumanMessage, ToolMessage
from redis.connection import AbstractConnection
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, OneTurn, isolated_settings, load_text, loop_cpu_ms, task_calls
from orchestrator import create_orchestrator
from orchestrator.embedded import local_cluster, worker_pool
from shared.settings import Settings

SUBAGENT = "inspector"
CORES = os.cpu_count() or 1
DELEGATIONS = 1000
QUICK_DELEGATIONS = 300
REPEATS = 3
QUICK_REPEATS = 1
WORKERS = 2
CONCURRENCY = 64
WARMUP = 40
IDLE_S = 3.0
CONCURRENT = (100, 1000, 10_000)
CORES_PER_HOST = 8
DELEGATION_S = 1.0
UTILIZATION = 0.7
PINNED = (1, 2, 4)
TOP_COMMANDS = 12


# ---------------------------------------------------------------------------------------------
# Reading CPU times and Redis's counters


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _tree(pids: Sequence[int]) -> list[psutil.Process]:
    """These processes and all their children (a prefork pool's), as they are now."""
    processes: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            leader = psutil.Process(pid)
            processes += [leader, *leader.children(recursive=True)]
    return processes


def _tree_cpu_s(pids: Sequence[int]) -> float:
    total = 0.0
    for process in _tree(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += _cpu_s(process)
    return total


_sent_here = [0]
"""Requests this process (the orchestrator) has sent to Redis since `_count_requests_sent_here`."""


def _count_requests_sent_here() -> None:
    """Count every request this process sends: redis-py sends each command, pipeline or script
    call with one `send_packed_command`, kombu's included, so these are its round trips."""
    send = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        _sent_here[0] += 1
        send(self, command, check_health)  # type: ignore[no-untyped-call]

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


@dataclass(frozen=True)
class Snapshot:
    wall_s: float
    here_cpu_s: float
    workers_cpu_s: float
    redis_cpu_s: float
    net_in: int
    net_out: int
    round_trips: int
    here_round_trips: int
    commands: dict[str, tuple[int, int]]
    """Command name: (calls, microseconds), from `INFO commandstats`."""


def _snapshot(client: redis.Redis, workers: Sequence[int]) -> Snapshot:
    info: dict[str, Any] = client.info("all")
    commands = {
        key.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
        for key, value in info.items()
        if key.startswith("cmdstat_") and isinstance(value, dict)
    }
    return Snapshot(
        wall_s=time.perf_counter(),
        here_cpu_s=_cpu_s(psutil.Process()),
        workers_cpu_s=_tree_cpu_s(workers),
        redis_cpu_s=float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        net_in=int(info["total_net_input_bytes"]),
        net_out=int(info["total_net_output_bytes"]),
        round_trips=int(info["total_reads_processed"]),
        here_round_trips=_sent_here[0],
        commands=commands,
    )


@dataclass(frozen=True)
class Spent:
    """What happened between two snapshots."""

    count: int
    wall_s: float
    here_cpu_s: float
    workers_cpu_s: float
    redis_cpu_s: float
    net_in: int
    net_out: int
    round_trips: int
    here_round_trips: int
    commands: dict[str, tuple[int, int]]

    @property
    def rate(self) -> float:
        return self.count / self.wall_s

    def per(self, value: float) -> float:
        """`value` per delegation."""
        return value / self.count

    @property
    def calls(self) -> int:
        return sum(calls for calls, _ in self.commands.values())

    @property
    def command_us(self) -> int:
        return sum(usec for _, usec in self.commands.values())


def _spent(before: Snapshot, after: Snapshot, count: int) -> Spent:
    commands: dict[str, tuple[int, int]] = {}
    for name, (calls, usec) in after.commands.items():
        was_calls, was_usec = before.commands.get(name, (0, 0))
        if name == "info":
            was_calls += 1  # the first snapshot's own INFO, counted once it had run
        if calls > was_calls:
            commands[name] = (calls - was_calls, usec - was_usec)
    return Spent(
        count=count,
        wall_s=after.wall_s - before.wall_s,
        here_cpu_s=after.here_cpu_s - before.here_cpu_s,
        workers_cpu_s=after.workers_cpu_s - before.workers_cpu_s,
        redis_cpu_s=after.redis_cpu_s - before.redis_cpu_s,
        net_in=after.net_in - before.net_in,
        net_out=after.net_out - before.net_out,
        round_trips=after.round_trips - before.round_trips,
        here_round_trips=after.here_round_trips - before.here_round_trips,
        commands=commands,
    )


def _all_cpu_s(spent: Spent) -> float:
    return spent.here_cpu_s + spent.workers_cpu_s + spent.redis_cpu_s


def _total(runs: Sequence[Spent]) -> Spent:
    """Every run's counters added up: per-delegation figures over all of them."""
    commands: dict[str, tuple[int, int]] = {}
    for run in runs:
        for name, (calls, usec) in run.commands.items():
            had_calls, had_usec = commands.get(name, (0, 0))
            commands[name] = (had_calls + calls, had_usec + usec)
    return Spent(
        count=sum(run.count for run in runs),
        wall_s=sum(run.wall_s for run in runs),
        here_cpu_s=sum(run.here_cpu_s for run in runs),
        workers_cpu_s=sum(run.workers_cpu_s for run in runs),
        redis_cpu_s=sum(run.redis_cpu_s for run in runs),
        net_in=sum(run.net_in for run in runs),
        net_out=sum(run.net_out for run in runs),
        round_trips=sum(run.round_trips for run in runs),
        here_round_trips=sum(run.here_round_trips for run in runs),
        commands=commands,
    )


# ---------------------------------------------------------------------------------------------
# One turn, workers, pinning


def _turn(live: Settings, client: redis.Redis, workers: Sequence[int], count: int) -> Spent:
    """One model turn of `count` delegations to the instant subagent, measured around `invoke`."""
    model = OneTurn(calls=task_calls(SUBAGENT, [f"job {n}" for n in range(count)]))
    agent = create_orchestrator(model, settings=live)
    gc.collect()
    before = _snapshot(client, workers)
    result = agent.invoke({"messages": [HumanMessage(content="go")]})
    after = _snapshot(client, workers)
    reports = [m for m in result["messages"] if isinstance(m, ToolMessage) and m.status == "success"]
    if len(reports) != count:
        raise SystemExit(f"{count - len(reports)} of {count} delegations did not report")
    return _spent(before, after, count)


def _redis_pid(live: Settings) -> int:
    port = str((live.redis_url or "").rsplit(":", 1)[1].split("/")[0])
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "redis" in child.name() and port in " ".join(child.cmdline()):
                return int(child.pid)
    raise SystemExit("the private Redis process was not found")


def _pin(pids: Sequence[int], cpus: set[int]) -> None:
    """Every thread of these processes, not their children, onto `cpus` (affinity is a
    thread's, and new threads inherit their creator's)."""
    for pid in pids:
        for thread in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(thread.name), cpus)


def _affinity(processes: Sequence[int | psutil.Process]) -> str:
    """The cpus the threads of these processes may run on, as printed in the table."""
    cpus: set[int] = set()
    for process in processes:
        pid = process if isinstance(process, int) else process.pid
        for thread in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                cpus |= os.sched_getaffinity(int(thread.name))
    return ",".join(map(str, sorted(cpus)))


@contextlib.contextmanager
def _workers(live: Settings, directory: Path, count: int, pinned: bool) -> Iterator[list[int]]:
    """`count` worker processes; pinned, the k-th is forked from this thread while it runs on cpu
    k alone, so that the worker and every thread it ever starts stay on that cpu."""
    with contextlib.ExitStack() as stack:
        if not pinned:
            yield stack.enter_context(worker_pool(live, directory, count, name=f"s{count}w"))
            return
        everything = os.sched_getaffinity(0)
        pids: list[int] = []
        try:
            for cpu in range(count):
                os.sched_setaffinity(0, {cpu})
                pids += stack.enter_context(worker_pool(live, directory, 1, name=f"p{count}c{cpu}w"))
        finally:
            os.sched_setaffinity(0, everything)
        yield pids


# ---------------------------------------------------------------------------------------------
# Tables


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _cost_table(runs: list[Spent], workers: int, concurrency: int, task_events: bool) -> Table:
    table = Table(
        title=f"One orchestrator process, turns of {runs[0].count:,} delegations to `{SUBAGENT}`, "
        f"{workers} workers × {concurrency} threads, {CORES} cores, Celery task events "
        f"{'on' if task_events else 'off'}; CPU per delegation"
    )
    for column in (
        "run",
        "delegations/s",
        "orchestrator CPU",
        "orchestrator busy",
        "per orchestrator core",
        "workers CPU",
        "Redis CPU",
        "Redis command time",
        "all CPU",
    ):
        table.add_column(column, justify="right")

    def row(label: str, spent: Spent) -> None:
        table.add_row(
            label,
            f"{spent.rate:,.0f}",
            _ms(spent.per(spent.here_cpu_s)),
            f"{spent.here_cpu_s / spent.wall_s:.2f} cores",
            f"{spent.count / spent.here_cpu_s:,.0f}/s",
            _ms(spent.per(spent.workers_cpu_s)),
            _ms(spent.per(spent.redis_cpu_s)),
            _ms(spent.per(spent.command_us / 1e6)),
            _ms(spent.per(_all_cpu_s(spent))),
        )

    for number, spent in enumerate(runs, 1):
        row(str(number), spent)
    if len(runs) > 1:
        row("all runs", _total(runs))
    return table


def _redis_table(total: Spent) -> Table:
    table = Table(
        title=f"Redis per delegation: {total.per(total.round_trips):.1f} round trips "
        f"({total.per(total.here_round_trips):.1f} from the orchestrator, the rest from workers), "
        f"{total.per(total.calls):.1f} commands, "
        f"{total.per(total.net_in):,.0f} B in, {total.per(total.net_out):,.0f} B out; "
        f"top {TOP_COMMANDS} of {len(total.commands)} commands"
    )
    for column in ("command", "calls per delegation", "µs per call", "µs per delegation", "share of time"):
        table.add_column(column, justify="right")
    ranked = sorted(total.commands.items(), key=lambda item: (-item[1][0], item[0]))
    for name, (calls, usec) in ranked[:TOP_COMMANDS]:
        table.add_row(
            name,
            f"{total.per(calls):.2f}",
            f"{usec / calls:.1f}",
            f"{total.per(usec):.1f}",
            f"{usec / max(total.command_us, 1):.0%}",
        )
    return table


@dataclass(frozen=True)
class Sizing:
    cores_per_host: int
    delegation_s: float
    utilization: float
    slots: int


def _hosts_table(total: Spent, sizing: Sizing) -> Table:
    u = sizing.utilization
    table = Table(
        title=f"Hosts for C concurrent subagents, each {sizing.delegation_s:g} s of wall time per "
        f"delegation (C / {sizing.delegation_s:g} delegations/s), at the CPU per delegation measured "
        f"above, every core kept at {u:.0%}, hosts of {sizing.cores_per_host} cores"
    )
    for column in (
        "concurrent subagents",
        "delegations/s",
        "orchestrator cores",
        "orchestrator processes",
        "worker cores",
        "worker processes",
        "Redis: its one thread",
        "Redis traffic in / out",
        "hosts",
    ):
        table.add_column(column, justify="right")
    here, workers, store = (
        total.per(total.here_cpu_s),
        total.per(total.workers_cpu_s),
        total.per(total.redis_cpu_s),
    )
    for concurrent in CONCURRENT:
        rate = concurrent / sizing.delegation_s
        orchestrator_cores, worker_cores, redis_cores = rate * here, rate * workers, rate * store
        orchestrators = math.ceil(orchestrator_cores / u)
        worker_processes = max(math.ceil(worker_cores / u), math.ceil(concurrent / sizing.slots))
        hosts = math.ceil((orchestrator_cores + worker_cores) / (sizing.cores_per_host * u))
        redis_text = f"{redis_cores:.0%}"
        if redis_cores > u:
            redis_text += f" (> {u:.0%}: {math.ceil(redis_cores / u)} Redis)"
        table.add_row(
            f"{concurrent:,}",
            f"{rate:,.0f}",
            f"{orchestrator_cores:.1f}",
            f"{orchestrators:,}",
            f"{worker_cores:.1f}",
            f"{worker_processes:,}",
            redis_text,
            f"{rate * total.per(total.net_in) / 1e6:.1f} / {rate * total.per(total.net_out) / 1e6:.1f} MB/s",
            f"{hosts:,} + Redis",
        )
    return table


@dataclass(frozen=True)
class PinnedRow:
    workers: int
    runs: list[Spent]
    worker_cpus: str
    others_cpus: str


def _pinned_table(rows: list[PinnedRow | int], count: int, concurrency: int) -> Table:
    table = Table(
        title=f"Workers pinned to a core each, turns of {count:,} delegations, {concurrency} threads "
        "per worker (median of the runs)"
    )
    for column in (
        "workers",
        "worker cpus",
        "orchestrator, Redis cpus",
        "delegations/s",
        "vs 1 worker",
        "workers busy",
        "per worker core",
        "workers CPU/delegation",
        "orchestrator busy",
        "all busy",
    ):
        table.add_column(column, justify="right")
    first: float | None = None
    for row in rows:
        if isinstance(row, int):
            table.add_row(str(row), f"skipped: needs {row} cores", *[""] * 8)
            continue
        rate = statistics.median(run.rate for run in row.runs)
        first = first or rate
        busy = statistics.median(run.workers_cpu_s / run.wall_s for run in row.runs)
        table.add_row(
            str(row.workers),
            row.worker_cpus,
            row.others_cpus,
            f"{rate:,.0f}",
            f"{rate / first:.2f}×",
            f"{busy:.2f} cores",
            f"{busy / row.workers:.0%}",
            _ms(statistics.median(run.per(run.workers_cpu_s) for run in row.runs)),
            f"{statistics.median(run.here_cpu_s / run.wall_s for run in row.runs):.2f} cores",
            f"{statistics.median(_all_cpu_s(run) / run.wall_s for run in row.runs):.2f} of {CORES} cores",
        )
    return table


# ---------------------------------------------------------------------------------------------
# The run


def _machine(client: redis.Redis) -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")
        ]
        if names:
            model = names[0].split(":", 1)[1].strip()
    version = client.info("server").get("redis_version", "?")
    return (
        f"{CORES} cores ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, Redis {version} (private, spare port)"
    )


def _measure_cost(
    live: Settings, client: redis.Redis, directory: Path, args: argparse.Namespace
) -> tuple[list[Spent], Spent]:
    with _workers(live, directory, args.workers, pinned=False) as pids:
        _turn(live, client, pids, WARMUP)  # every worker builds the subagent once; imports
        before = _snapshot(client, pids)
        time.sleep(IDLE_S)
        idle = _spent(before, _snapshot(client, pids), 1)
        return [_turn(live, client, pids, args.delegations) for _ in range(args.repeats)], idle


def _measure_pinned(
    live: Settings, client: redis.Redis, directory: Path, args: argparse.Namespace
) -> list[PinnedRow | int]:
    redis_pid, rows = _redis_pid(live), list[PinnedRow | int]()
    everything = os.sched_getaffinity(0)
    for count in PINNED:
        if count > len(everything):
            rows.append(count)
            continue
        with _workers(live, directory, count, pinned=True) as pids:
            spare = everything - set(range(count))
            others = spare or everything
            _pin([os.getpid(), redis_pid], others)
            try:
                _turn(live, client, pids, WARMUP)
                runs = [_turn(live, client, pids, args.delegations) for _ in range(args.repeats)]
                others_text = _affinity([os.getpid(), redis_pid]) + ("" if spare else " (no spare core)")
                rows.append(PinnedRow(count, runs, _affinity(_tree(pids)), others_text))
            finally:
                _pin([os.getpid(), redis_pid], everything)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DELEGATIONS} delegations, 1 repeat")
    parser.add_argument(
        "--delegations", type=int, help=f"per turn (default {DELEGATIONS}, {QUICK_DELEGATIONS} with --quick)"
    )
    parser.add_argument("--repeats", type=int, help=f"turns per case (default {REPEATS}, 1 with --quick)")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"unpinned workers (default {WORKERS})")
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"threads per worker (default {CONCURRENCY})"
    )
    parser.add_argument(
        "--cores-per-host", type=int, default=CORES_PER_HOST, help=f"for the hosts table ({CORES_PER_HOST})"
    )
    parser.add_argument(
        "--delegation-s",
        type=float,
        default=DELEGATION_S,
        help=f"wall time of one subagent's delegation, for the hosts table ({DELEGATION_S:g})",
    )
    parser.add_argument(
        "--utilization",
        type=float,
        default=UTILIZATION,
        help=f"share of each core the hosts table plans to use ({UTILIZATION:g})",
    )
    parser.add_argument(
        "--without-task-events",
        dest="task_events",
        action="store_false",
        help="as TASKFORCE_TASK_EVENTS=false, where no Flower watches (default: on, as Flower needs)",
    )
    args = parser.parse_args(argv)
    args.delegations = args.delegations or (QUICK_DELEGATIONS if args.quick else DELEGATIONS)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)

    console = Console(width=max(Console().width, 190))
    load_before, loop_before_ms = os.getloadavg(), loop_cpu_ms()
    started = time.monotonic()
    _count_requests_sent_here()
    settings = isolated_settings(
        subagents=TEST_REGISTRY,
        general_purpose=False,
        worker_concurrency=args.concurrency,
        task_events=args.task_events,
    )
    with (
        tempfile.TemporaryDirectory(prefix="taskforce-bench-scaling-") as scratch,
        local_cluster(settings, workers=0) as live,
    ):
        client = redis.Redis.from_url(live.redis_url or "")
        machine = _machine(client)
        runs, idle = _measure_cost(live, client, Path(scratch), args)
        pinned = _measure_pinned(live, client, Path(scratch), args)
        client.close()
    load_after, loop_after_ms = os.getloadavg(), loop_cpu_ms()

    total = _total(runs)
    console.print(f"Machine: {machine}")
    console.print(_cost_table(runs, args.workers, args.concurrency, args.task_events))
    console.print(
        "delegations/s: N over the turn's wall time, orchestrator, workers and Redis sharing this "
        "machine's cores; orchestrator busy: its CPU over the wall time; per orchestrator core: N over "
        "its CPU, what one orchestrator process sustains on a core of its own; Redis CPU: INFO "
        "used_cpu_user + used_cpu_sys; command time: commandstats usec, Redis's one thread running commands"
    )
    console.print(_redis_table(total))
    console.print(
        "Commands run inside Lua scripts count as well as the EVALSHA/EVAL running them. Idle, between "
        f"turns: {idle.round_trips / idle.wall_s:.1f} round trips and "
        f"{idle.calls / idle.wall_s:.1f} commands/s, "
        f"{(idle.net_in + idle.net_out) / idle.wall_s:,.0f} bytes/s (workers' polls, heartbeats), "
        f"included above: about {idle.calls / idle.wall_s * total.wall_s / total.count:.2f} commands "
        "per delegation."
    )
    sizing = Sizing(args.cores_per_host, args.delegation_s, args.utilization, args.concurrency)
    console.print(_hosts_table(total, sizing))
    console.print(
        "Bounds: each part's CPU-seconds per second = delegations/s × its CPU per delegation. "
        f"Orchestrator and worker processes: about one core each at most (one GIL), so processes = "
        f"cores / {args.utilization:g}; worker processes also hold at most {args.concurrency} "
        f"subagents at once (threads); Redis runs commands on one thread and taskforce uses one Redis "
        f"(TASKFORCE_REDIS_URL), so it holds while its CPU stays under {args.utilization:.0%} of one core; "
        "past that it is the limit. Hosts: orchestrator and worker cores over "
        f"{args.cores_per_host} × {args.utilization:g}, plus a host for Redis. The measured subagent "
        "answers at once with one model call: a real subagent's own model calls and tools add worker CPU."
    )
    console.print(_pinned_table(pinned, args.delegations, args.concurrency))
    console.print(
        "workers busy: the workers' CPU over the wall time; per worker core: that over the workers "
        "(100% = each pinned core saturated); all busy: orchestrator, workers and Redis together. With no "
        "spare core the orchestrator and Redis share the workers' cores: once all busy nears the "
        "machine's cores, the machine, not the workers, is the limit, and the row understates what "
        "more cores give."
    )
    console.print(
        f"ran {time.monotonic() - started:.0f} s; load average (1, 5, 15 min) {load_text(load_before)} "
        f"before, {load_text(load_after)} after; a fixed loop (`bench.common.loop_cpu_ms`) took "
        f"{loop_before_ms:.0f} ms of CPU before, {loop_after_ms:.0f} ms after"
    )


if __name__ == "__main__":
    main()
