"""What the CLI shows while a run is under way and after it: delegations queued, running and
done, then one row per delegation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from celery import states
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.client import DelegationClient
from shared.schemas import Delegation, Report


class DelegationTracker:
    """Listens to the delegation middleware; safe to call from LangGraph's tool threads."""

    def __init__(self, client: DelegationClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._sent: dict[str, Delegation] = {}
        self._reports: dict[str, Report] = {}

    def dispatched(self, delegation: Delegation, task_id: str) -> None:
        with self._lock:
            self._sent[task_id] = delegation

    def reported(self, report: Report, task_id: str) -> None:
        with self._lock:
            self._reports[task_id] = report

    @property
    def reports(self) -> list[Report]:
        with self._lock:
            return [self._reports[task_id] for task_id in self._sent if task_id in self._reports]

    def counts(self) -> tuple[int, int, int]:
        """(queued, running, done), asking Redis about the ones still out."""
        with self._lock:
            outstanding = [task_id for task_id in self._sent if task_id not in self._reports]
            done = len(self._reports)
        observed = self._client.states(outstanding)
        running = sum(1 for state in observed.values() if state != states.PENDING)
        return len(outstanding) - running, running, done


def progress_line(tracker: DelegationTracker) -> Text:
    queued, running, done = tracker.counts()
    return Text.assemble(
        ("delegations  ", "bold"),
        (f"{queued} queued", "yellow"),
        "  ·  ",
        (f"{running} running", "cyan"),
        "  ·  ",
        (f"{done} done", "green"),
    )


@contextlib.contextmanager
def live_progress(tracker: DelegationTracker, console: Console) -> Iterator[None]:
    stop = threading.Event()
    with Live(progress_line(tracker), console=console, transient=False, auto_refresh=False) as live:

        def refresh() -> None:
            while not stop.wait(0.3):
                live.update(progress_line(tracker), refresh=True)

        painter = threading.Thread(target=refresh, name="taskforce-progress", daemon=True)
        painter.start()
        try:
            yield
        finally:
            stop.set()
            painter.join()
            live.update(progress_line(tracker), refresh=True)
    if not console.is_terminal:
        console.line()


def delegation_table(reports: list[Report]) -> Table:
    table = Table(title="Delegations", show_lines=False)
    for column, justify in [
        ("#", "right"),
        ("subagent", "left"),
        ("status", "left"),
        ("duration", "right"),
        ("report", "right"),
        ("worker", "left"),
        ("full text / files", "left"),
    ]:
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    colours = {"ok": "green", "error": "red", "timeout": "yellow"}
    for index, report in enumerate(reports, start=1):
        files = [report.full_report_path] if report.full_report_path else []
        table.add_row(
            str(index),
            report.subagent_type,
            Text(report.status, style=colours[report.status]),
            f"{report.duration_s:.2f} s",
            f"{len(report.summary):,} chars",
            report.worker or "-",
            ", ".join([*files, *report.artifacts]) or "-",
        )
    return table
