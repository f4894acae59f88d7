"""What `taskforce batch` shows: a live line while the batch runs, a summary at its end."""

from __future__ import annotations

import statistics

from rich.table import Table
from rich.text import Text

from orchestrator.batch.run import BatchOutcome, BatchProgress
from orchestrator.budgets import batch_account
from shared.budgets import describe_spent
from shared.schemas import TokenUsage


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def progress_line(progress: BatchProgress) -> Text:
    left = progress.total - progress.skipped
    return Text.assemble(
        ("items  ", "bold"),
        (f"{progress.done + progress.failed + progress.waiting}/{left} finished", "green"),
        "  ·  ",
        (f"{progress.failed} failed", "red" if progress.failed else "green"),
        *((("  ·  "), (f"{progress.waiting} need approval", "yellow")) if progress.waiting else ()),
        "  ·  ",
        (f"{progress.running} running", "cyan"),
        "  ·  ",
        (f"{progress.in_flight} delegations in flight", "cyan"),
        "  ·  ",
        f"{progress.rate() * 60:.1f} items/min",
        "  ·  ",
        f"ETA {_duration(progress.eta_s())}",
    )


def percentile(values: list[float], percent: int) -> float:
    """Inclusive percentile, so that a small sample's p95 stays within what was measured."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def summary_table(outcome: BatchOutcome) -> Table:
    durations = [result.duration_s for result in outcome.results]
    usage = sum((result.usage for result in outcome.results), TokenUsage())
    table = Table(title=f"Batch {outcome.batch_id}", show_header=False)
    table.add_column(justify="right")
    table.add_column()
    table.add_row("ran", f"{len(outcome.results)} items in {outcome.elapsed_s:.1f} s")
    table.add_row("ok", str(len(outcome.results) - len(outcome.failed) - len(outcome.waiting)))
    table.add_row("failed", str(len(outcome.failed)))
    if outcome.waiting:
        table.add_row("need approval", str(len(outcome.waiting)))
    table.add_row("skipped", f"{outcome.skipped} (already ok in the results file)")
    table.add_row("rejected lines", str(len(outcome.rejected)))
    table.add_row(
        "item time p50 / p95", f"{percentile(durations, 50):.1f} s / {percentile(durations, 95):.1f} s"
    )
    table.add_row("tokens", f"{usage.input_tokens:,} in, {usage.output_tokens:,} out")
    if outcome.budget is not None and outcome.spent is not None:
        table.add_row(
            "budget", describe_spent(outcome.budget.ref(batch_account(outcome.batch_id)), outcome.spent)
        )
    return table


def problems(outcome: BatchOutcome) -> list[str]:
    """One line per rejected input line, failed item and item waiting for approval."""
    failures = [f"item {result.id!r}: {result.error}" for result in [*outcome.failed, *outcome.waiting]]
    return [*outcome.rejected, *failures]
