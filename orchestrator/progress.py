"""What the CLI shows while a run is under way and after it: delegations queued, running,
done and failed, then one row per delegation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

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

    def dispatched(self, delegation: Delegation) -> None:
        with self._lock:
            self._sent[delegation.id] = delegation

    def reported(self, report: Report) -> None:
        with self._lock:
            self._reports[report.delegation_id] = report

    @property
    def reports(self) -> list[Report]:
        with self._lock:
            return [self._reports[key] for key in self._sent if key in self._reports]

    def counts(self) -> tuple[int, int, int, int]:
        """(queued, running, done, failed), as the client's listener last saw them in Redis;
        a cancelled or timed-out delegation counts as failed, not done."""
        with self._lock:
            outstanding = [key for key in self._sent if key not in self._reports]
            done = sum(1 for report in self._reports.values() if report.status == "ok")
            failed = len(self._reports) - done
        states = dict(self._client.states)
        running = sum(1 for key in outstanding if states.get(key) == "running")
        return len(outstanding) - running, running, done, failed


def progress_line(tracker: DelegationTracker) -> Text:
    queued, running, done, failed = tracker.counts()
    return Text.assemble(
        ("delegations  ", "bold"),
        (f"{queued} queued", "yellow"),
        "  ·  ",
        (f"{running} running", "cyan"),
        "  ·  ",
        (f"{done} done", "green"),
        "  ·  ",
        (f"{failed} failed", "red" if failed else "green"),
    )


@contextlib.contextmanager
def live_progress(render: Callable[[], Text], console: Console) -> Iterator[None]:
    """Repaints `render()` twice a second until the block ends, then once more."""
    stop = threading.Event()
    try:
        with Live(render(), console=console, transient=False, auto_refresh=False) as live:

            def refresh() -> None:
                while not stop.wait(0.3):
                    live.update(render(), refresh=True)

            painter = threading.Thread(target=refresh, name="taskforce-progress", daemon=True)
            painter.start()
            try:
                yield
            finally:
                stop.set()
                painter.join()
                live.update(render(), refresh=True)
    finally:
        # Whatever is printed next (an answer, an error, "interrupted") starts on its own line.
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
    colours = {
        "ok": "green",
        "error": "red",
        "timeout": "yellow",
        "cancelled": "yellow",
        "dead_letter": "red",
    }
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
