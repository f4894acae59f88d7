"""What the CLI shows while a run is under way and after it: delegations queued, running,
done and failed with a live line for each running one (its subagent's latest step, from the
progress the worker publishes: `shared.progress`), then one row per delegation."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from orchestrator.delegation.client import DelegationClient
from shared.ledger import State
from shared.progress import WAITING_NODE, ProgressReader, Step
from shared.schemas import Delegation, Report, TokenUsage

SHOWN_RUNNING = 8
"""Running delegations shown a line each; the rest are counted."""
REPAINTS_PER_SECOND = 3
"""Each repaint reads every shown delegation's new steps from Redis."""


def describe_step(step: Step) -> str:
    """A few words on what a subagent just did."""
    last = step.messages[-1]
    if step.node == WAITING_NODE:
        return last.text
    calls = getattr(last, "tool_calls", None)
    if calls:
        return "calling " + ", ".join(call["name"] for call in calls)
    if step.node == "tools":
        return f"got the result of {last.name or 'a tool'}"
    return "answering"


class DelegationTracker:
    """Listens to the delegation middleware; safe to call from LangGraph's tool threads."""

    def __init__(self, client: DelegationClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._sent: dict[str, Delegation] = {}
        self._reports: dict[str, Report] = {}
        self._steps: dict[str, ProgressReader] = {}
        self.latest: dict[str, str] = {}
        """What each delegation's subagent did last, as far as `running_lines` has read."""

    def _reader(self, delegation_id: str) -> ProgressReader:
        return ProgressReader(self._client.ledger.client, self._client.settings.queue_prefix, delegation_id)

    def dispatched(self, delegation: Delegation) -> None:
        with self._lock:
            self._sent[delegation.id] = delegation
            self._steps[delegation.id] = self._reader(delegation.id)

    def reported(self, report: Report) -> None:
        with self._lock:
            self._reports[report.delegation_id] = report
            reader = self._steps.pop(report.delegation_id, None)
        # Its steps were only ever shown here; a resumed run's delegations were sent before.
        (reader or self._reader(report.delegation_id)).forget()

    def running_lines(self) -> list[Text]:
        """A line per running delegation: its subagent, its task, its latest step."""
        states = dict(self._client.states)
        with self._lock:
            running = [
                (key, self._sent[key], reader)
                for key, reader in self._steps.items()
                if states.get(key) == State.RUNNING
            ]
        lines = []
        for key, delegation, reader in running[:SHOWN_RUNNING]:
            steps = reader.read(block=False)
            if steps:
                self.latest[key] = describe_step(steps[-1])
            lines.append(
                Text.assemble(
                    ("  " + delegation.subagent_type, "cyan"),
                    f"  {delegation.description[:48]!r}  ",
                    (self.latest.get(key, "starting"), "dim"),
                )
            )
        if len(running) > SHOWN_RUNNING:
            lines.append(Text(f"  … and {len(running) - SHOWN_RUNNING} more running", style="dim"))
        return lines

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
        running = sum(1 for key in outstanding if states.get(key) == State.RUNNING)
        return len(outstanding) - running, running, done, failed


def progress_line(tracker: DelegationTracker) -> Text:
    queued, running, done, failed = tracker.counts()
    counts = Text.assemble(
        ("delegations  ", "bold"),
        (f"{queued} queued", "yellow"),
        "  ·  ",
        (f"{running} running", "cyan"),
        "  ·  ",
        (f"{done} done", "green"),
        "  ·  ",
        (f"{failed} failed", "red" if failed else "green"),
    )
    return Text("\n").join([counts, *tracker.running_lines()])


@contextlib.contextmanager
def live_progress(render: Callable[[], Text], console: Console) -> Iterator[None]:
    """Shows `render()` while the block runs. On a terminal rich repaints it from its own
    thread and leaves the last state on screen; elsewhere (a pipe, CI, a dumb terminal) only
    that last state is printed, once and without escape codes, so logs stay readable."""
    try:
        with Live(console=console, get_renderable=render, refresh_per_second=REPAINTS_PER_SECOND) as live:
            live.refresh()  # at once, not a repaint interval later
            yield
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
        ("tokens in / out", "right"),
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
        "budget_exhausted": "yellow",
    }
    for index, report in enumerate(reports, start=1):
        files = [report.full_report_path] if report.full_report_path else []
        table.add_row(
            str(index),
            report.subagent_type,
            Text(report.status, style=colours[report.status]),
            _duration(report),
            f"{len(report.summary):,} chars",
            f"{report.usage.input_tokens:,} / {report.usage.output_tokens:,}",
            report.worker or "-",
            ", ".join([*files, *report.artifacts]) or "-",
        )
    return table


def _duration(report: Report) -> str:
    waited = sum(report.model_wait_s.values())
    return f"{report.duration_s:.2f} s" + (f" ({waited:.1f} s waiting for limits)" if waited >= 0.05 else "")


def usage_line(main_agent: TokenUsage, reports: list[Report]) -> str:
    """Tokens as the providers reported them, the main agent's apart from its subagents': the
    first thing to check when a run costs more than it should."""
    delegated = sum((report.usage for report in reports), TokenUsage())
    total = main_agent + delegated
    return (
        f"Tokens: {total.input_tokens:,} in, {total.output_tokens:,} out "
        f"(main agent {main_agent.input_tokens:,} / {main_agent.output_tokens:,}; "
        f"{len(reports)} delegation{'' if len(reports) == 1 else 's'} "
        f"{delegated.input_tokens:,} / {delegated.output_tokens:,})"
    )
