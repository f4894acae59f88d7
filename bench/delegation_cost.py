"""What one delegation costs: taskforce against deepagents running the same subagent in-process,
measured side by side in one run.

    python -m bench.delegation_cost [--runs N] [--quick]     (default 200 runs; --quick: 30)

Per-delegation cost is the time of a main-agent call whose model makes one `task` call to an
instant subagent and then answers, minus the time of the same agent whose model answers at once.
The subagent is the integration tests' `inspector`, whose model answers immediately, so what is
left is the cost of delegating. taskforce runs `create_orchestrator` against one warm worker on a
private Redis (`local_cluster(settings, 1)`); deepagents runs `create_deep_agent` with the very
same spec object. Both are measured under `invoke` and, on one event loop kept for all calls,
under `ainvoke`.

Method: the main model is scripted and used up by one call, so every call builds a fresh agent
around a fresh model, untimed, then collects garbage, untimed too (else the build's garbage
would be collected inside a random timed call). Each repetition makes the four calls, the two
calls of one side adjacent, their order and the order of the sides alternating between
repetitions. The cost of a repetition is the difference of its adjacent pair; the table shows
the p50 and p95 of those per-pair differences, not a difference of medians. A few repetitions
of everything run first and are discarded. The target, printed and never asserted: taskforce's
cost at p50 at most 2 ms above deepagents'.

The second table breaks one taskforce delegation down, from separate probed runs so that the
probes cost the first table nothing: send (from the `send` that `after_model` makes until the
message is in the queue: recording it, then publishing it), queue (until a worker claimed it),
run (until the worker stored the report) and wake (until the waiting tool call has it); they add
up to total. `send` goes on after the message is queued (Celery's task-sent event, starting the
report listener), while the worker already runs it: its last row. The probes wrap
`DelegationClient` methods and kombu's Redis `_put` (the message's LPUSH) in this process, and
read the worker's `claimed_at` and `finished_at` from the delegation's record before it is
collected. Those are the Redis server's clock in whole milliseconds (the same machine's clock
as ours), so queue, run and wake are each good to about a millisecond.

The benchmark ignores every TASKFORCE_* variable and `.env`: it always starts its own Redis on a
spare port and its own worker, and never touches a shared Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from unittest.mock import patch

from deepagents import create_deep_agent
from kombu.transport.redis import Channel as RedisChannel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, isolated_settings, load_text, loop_cpu_ms, test_subagents
from orchestrator import create_orchestrator
from orchestrator.cli.batch_view import percentile
from orchestrator.delegation.client import DelegationClient
from orchestrator.embedded import local_cluster
from shared.celery_app import create_celery_app
from shared.files import shared_files
from shared.files.backend import FilesBackend
from shared.files.memory import MemoryStore
from shared.schemas import Delegation, Report
from shared.settings import Settings
from tests.support.models import ScriptedModel
from workers.subagents import SubagentCache

INSPECTOR = test_subagents("inspector")
TARGET_MS = 2.0
RUNS = 200
QUICK_RUNS = 30
WARMUP_RUNS = 5
GIVE_UP_S = 30.0
SIDES = ("taskforce", "deepagents")

Mode = Literal["invoke", "ainvoke"]
Futures = list[Future[Report]]
Build = Callable[[GenericFakeChatModel], Any]
"""Builds the main agent of one side around a main model."""


def _main_model(delegate: bool) -> ScriptedModel:
    task = AIMessage(
        content="",
        tool_calls=[
            {"name": "task", "args": {"description": "inspect", "subagent_type": "inspector"}, "id": "c0"}
        ],
    )
    answer = AIMessage(content="done")
    return ScriptedModel(messages=iter([task, answer] if delegate else [answer]))


def _check(result: dict[str, Any], delegate: bool) -> None:
    """A timing of a delegation that failed would be a timing of something else."""
    reports = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    if len(reports) != int(delegate) or any(m.status != "success" for m in reports):
        raise SystemExit(f"unexpected run (delegate={delegate}): {result['messages']}")


class _Caller:
    """Times one call of an agent; `ainvoke` calls share one event loop, as in a real server, so
    its default executor's threads are not started again for every call."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self._runner = runner

    def __call__(self, build: Build, delegate: bool, mode: Mode) -> float:
        agent = build(_main_model(delegate))
        gc.collect()
        if mode == "invoke":
            started = time.perf_counter()
            result = agent.invoke({"messages": [HumanMessage(content="go")]})
            elapsed = time.perf_counter() - started
        else:
            elapsed, result = self._runner.run(_atimed(agent))
        _check(result, delegate)
        return elapsed * 1000


async def _atimed(agent: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = await agent.ainvoke({"messages": [HumanMessage(content="go")]})
    return time.perf_counter() - started, result


@dataclass
class _Timings:
    """Milliseconds per repetition for one side."""

    direct: list[float] = field(default_factory=list)
    delegating: list[float] = field(default_factory=list)

    @property
    def cost(self) -> list[float]:
        return [one - none for one, none in zip(self.delegating, self.direct, strict=True)]


def _measure(call: _Caller, sides: dict[str, Build], mode: Mode, runs: int) -> dict[str, _Timings]:
    timings = {name: _Timings() for name in sides}
    for rep in range(runs):
        names = list(sides) if rep // 2 % 2 == 0 else list(reversed(sides))
        for name in names:
            for delegate in (True, False) if rep % 2 == 0 else (False, True):
                elapsed = call(sides[name], delegate, mode)
                (timings[name].delegating if delegate else timings[name].direct).append(elapsed)
    return timings


# The breakdown.


@dataclass
class _Trace:
    """One delegation as this process saw it (wall clock, s) and as its record says (server ms)."""

    started_at: float
    send_s: float | None = None
    queued_at: float | None = None
    received_at: float | None = None
    claimed_at_ms: int | None = None
    finished_at_ms: int | None = None
    subagent_s: float | None = None

    def segments(self) -> dict[str, float] | None:
        stamps = (
            self.send_s,
            self.queued_at,
            self.received_at,
            self.claimed_at_ms,
            self.finished_at_ms,
            self.subagent_s,
        )
        if any(stamp is None for stamp in stamps):
            return None
        send_s, queued_at, received_at, claimed_ms, finished_ms, subagent_s = cast(tuple[float, ...], stamps)
        # The server's stamps are truncated to whole ms: +0.5 ms is their expected fraction.
        claimed, finished = claimed_ms + 0.5, finished_ms + 0.5
        return {
            "send": (queued_at - self.started_at) * 1000,
            "queue": claimed - queued_at * 1000,
            "run": subagent_s * 1000,
            "report": finished - claimed - subagent_s * 1000,
            "wake": received_at * 1000 - finished,
            "total": (received_at - self.started_at) * 1000,
            "send, after queueing": (self.started_at + send_s - queued_at) * 1000,
        }


SEGMENTS = {
    "send": "send called → message in the queue (record, then publish)",
    "queue": "message in the queue → a worker claimed it",
    "run": "the subagent's run on the worker (its report's duration_s)",
    "report": "the rest of claimed → report stored: context, report, storing it",
    "wake": "report stored → the waiting tool call has it",
    "total": "send called → report in hand (the five above)",
    "send, after queueing": "message in the queue → send returns (overlaps queue and run)",
}


class _Probe:
    """Wraps `DelegationClient` and kombu's Redis `_put` (the LPUSH of a message) in this process:
    no product code changes for the measurement."""

    def __init__(self) -> None:
        self.traces: dict[str, _Trace] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        send_all, wait, await_report, collect = (
            DelegationClient.send_all,
            DelegationClient.wait,
            DelegationClient.await_report,
            DelegationClient.collect,
        )
        put: Callable[..., None] = RedisChannel._put
        traces = self.traces

        def timed_send_all(
            client: DelegationClient, delegations: Sequence[Delegation]
        ) -> list[Future[Report]]:
            # The tool call sends again to re-attach to its future: only the first send counts.
            started_at = time.time()
            first = [delegation.id for delegation in delegations if delegation.id not in traces]
            for delegation_id in first:
                traces[delegation_id] = _Trace(started_at)
            futures = send_all(client, delegations)
            for delegation_id in first:
                traces[delegation_id].send_s = time.time() - started_at
            return futures

        def stamped_put(channel: RedisChannel, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
            put(channel, queue, message, **kwargs)
            trace = traces.get(message["headers"]["id"])
            if trace is not None:
                trace.queued_at = time.time()

        def timed_wait(client: DelegationClient, delegation: Delegation) -> Report:
            report = wait(client, delegation)
            traces[delegation.id].received_at = time.time()
            traces[delegation.id].subagent_s = report.duration_s
            return report

        async def timed_await(client: DelegationClient, delegation: Delegation) -> Report:
            report = await await_report(client, delegation)
            traces[delegation.id].received_at = time.time()
            traces[delegation.id].subagent_s = report.duration_s
            return report

        def snapshot_collect(client: DelegationClient, delegation_ids: Iterable[str]) -> None:
            # Collecting deletes the record, and with it the worker's timestamps.
            ids = list(delegation_ids)
            for delegation_id in ids:
                claimed, finished = client.ledger.client.hmget(
                    client.ledger.key(delegation_id), ["claimed_at", "finished_at"]
                )
                trace = traces[delegation_id]
                trace.claimed_at_ms, trace.finished_at_ms = (
                    int(cast(bytes, claimed)),
                    int(cast(bytes, finished)),
                )
            collect(client, ids)

        with (
            patch.multiple(
                DelegationClient,
                send_all=timed_send_all,
                wait=timed_wait,
                await_report=timed_await,
                collect=snapshot_collect,
            ),
            patch.object(RedisChannel, "_put", stamped_put),
        ):
            yield

    def segments(self) -> dict[str, list[float]]:
        rows = [s for s in (trace.segments() for trace in self.traces.values()) if s is not None]
        return {name: [row[name] for row in rows] for name in SEGMENTS}


def _build_ms(settings: Settings) -> float:
    """What a worker spends on a subagent type's first delegation only: building its graph,
    which `SubagentCache` keeps for every later one (the runs above reuse it)."""
    cache = SubagentCache(INSPECTOR, settings.model, FilesBackend(MemoryStore("build")), None)
    started = time.perf_counter()
    cache.get("inspector", None, None)
    return (time.perf_counter() - started) * 1000


def _breakdown(call: _Caller, build: Build, mode: Mode, runs: int) -> dict[str, list[float]]:
    probe = _Probe()
    with probe.installed():
        for _ in range(runs):
            call(build, True, mode)
    return probe.segments()


# Printing.


def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _cost_table(results: dict[Mode, dict[str, _Timings]], runs: int) -> Table:
    table = Table(
        title=f"Per-delegation cost, one instant subagent: taskforce (1 warm worker) vs deepagents "
        f"in-process, {runs} runs each ({os.cpu_count()} cores)"
    )
    for column in ("call", "side", "no task p50", "p95", "one task p50", "p95", "cost p50", "p95"):
        table.add_column(column, justify="left" if column in {"call", "side"} else "right")
    table.add_column(f"target: ≤ deepagents + {TARGET_MS:g} ms", justify="right")
    for mode, timings in results.items():
        allowed = percentile(timings["deepagents"].cost, 50) + TARGET_MS
        for side in SIDES:
            t = timings[side]
            verdict = "—"
            if side == "taskforce":
                margin = allowed - percentile(t.cost, 50)
                verdict = f"≤ {_ms(allowed)}: margin {margin:+.1f} ms {'PASS' if margin >= 0 else 'BELOW'}"
            table.add_row(
                mode,
                side,
                *(_ms(percentile(v, q)) for v in (t.direct, t.delegating, t.cost) for q in (50, 95)),
                verdict,
            )
    return table


def _breakdown_table(breakdowns: dict[Mode, dict[str, list[float]]]) -> Table:
    counts = ", ".join(f"{len(b['total'])} under {mode}" for mode, b in breakdowns.items())
    table = Table(title=f"One taskforce delegation, step by step (probed runs: {counts})")
    table.add_column("step")
    table.add_column("from → to")
    for mode in breakdowns:
        table.add_column(f"{mode} p50", justify="right")
        table.add_column("p95", justify="right")
    for step, meaning in SEGMENTS.items():
        cells = [_ms(percentile(b[step], q)) for b in breakdowns.values() for q in (50, 95)]
        table.add_row(step, meaning, *cells)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.delegation_cost", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--runs", type=int, help=f"repetitions per case (default {RUNS}, {QUICK_RUNS} with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} repetitions: a smoke run")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)

    # A delegation that goes missing fails the run within GIVE_UP_S, not after the default hour.
    # No general-purpose: deepagents would run it on the scripted main model, workers cannot.
    settings = isolated_settings(
        subagents=TEST_REGISTRY, queue_timeout=GIVE_UP_S, delegation_timeout=GIVE_UP_S, general_purpose=False
    )

    console = Console(width=max(Console().width, 150))
    load_before, loop_before_ms = os.getloadavg(), loop_cpu_ms()
    started = time.monotonic()
    with local_cluster(settings, 1) as live, asyncio.Runner() as runner:
        # One client and one files backend for every agent built, as an application that builds
        # its agent once would have.
        client = DelegationClient(create_celery_app(live), live)
        backend = shared_files(live).backend()
        sides: dict[str, Build] = {
            "taskforce": lambda model: create_orchestrator(
                model, settings=live, client=client, backend=backend
            ),
            "deepagents": lambda model: create_deep_agent(model, subagents=INSPECTOR),
        }
        call = _Caller(runner)
        modes: tuple[Mode, ...] = ("invoke", "ainvoke")
        for mode in modes:
            _measure(call, sides, mode, WARMUP_RUNS)
        gc.freeze()  # what exists now lives for the whole run: no collection needs to walk it again
        results = {mode: _measure(call, sides, mode, runs) for mode in modes}
        breakdowns = {mode: _breakdown(call, sides["taskforce"], mode, runs) for mode in modes}
        client.close()
    load_after, loop_after_ms = os.getloadavg(), loop_cpu_ms()

    console.print(_cost_table(results, runs))
    console.print(
        "cost = (call whose model makes one task call) − (same agent, model answers directly), per "
        "adjacent pair; p50/p95 over the pairs"
    )
    console.print(_breakdown_table(breakdowns))
    console.print(
        "queue, report and wake use the Redis server's whole-ms stamps (+0.5 ms each): good to about "
        "1 ms; percentiles are per step, so the steps' p50s need not add up to total's. build: "
        f"{_build_ms(settings):.1f} ms, once per subagent type on each worker, before its first run"
    )
    console.print(
        f"ran {time.monotonic() - started:.0f} s; load average (1, 5, 15 min) "
        f"{load_text(load_before)} before, {load_text(load_after)} after; a fixed loop "
        f"(`bench.common.loop_cpu_ms`) took {loop_before_ms:.0f} ms of CPU before, "
        f"{loop_after_ms:.0f} ms after"
    )


if __name__ == "__main__":
    main()
