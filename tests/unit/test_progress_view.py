"""What the CLI shows while a run is under way (`orchestrator.progress`): a live view repainted
on a terminal and printed once, plainly, anywhere else; the counts and lines it is made of; the
table of delegations at the end."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import fakeredis
import pytest
from langchain_core.messages import AIMessage, ToolMessage
from rich.console import Console
from rich.text import Text

from orchestrator.delegation.client import DelegationClient
from orchestrator.progress import (
    SHOWN_RUNNING,
    DelegationTracker,
    delegation_table,
    describe_step,
    live_progress,
    progress_line,
)
from shared.progress import ProgressPublisher, Step
from shared.schemas import Delegation, Limits, Report, ReportStatus
from tests.support.waiting import eventually

CURSOR_SHOWN = "\x1b[?25h"


@pytest.fixture(autouse=True)
def capable_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forced terminal still goes plain under TERM=dumb; the tests say which one they want."""
    monkeypatch.setenv("TERM", "xterm")
    for name in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


class Screen:
    """A render whose text the test sets, counting how often it was asked for."""

    def __init__(self) -> None:
        self.text = "first"
        self.renders = 0

    def __call__(self) -> Text:
        self.renders += 1
        return Text(self.text)


def console(*, terminal: bool, width: int = 60) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=width), out


def test_off_a_terminal_only_the_final_state_is_printed_once_and_plainly() -> None:
    screen, (shown, out) = Screen(), console(terminal=False)
    with live_progress(screen, shown):
        time.sleep(0.8)  # a few repaint intervals
        assert out.getvalue() == ""
        screen.text = "last"
    shown.print("answer")

    assert out.getvalue() == "last\nanswer\n"


def test_a_dumb_terminal_gets_the_final_state_only_like_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    screen, (shown, out) = Screen(), console(terminal=True)
    with live_progress(screen, shown):
        time.sleep(0.5)
        screen.text = "last"
    shown.print("answer")

    assert "first" not in out.getvalue()
    assert out.getvalue().endswith("last\nanswer\n")


def test_on_a_terminal_the_view_shows_at_once_follows_the_run_and_stays_after_it() -> None:
    screen, (shown, out) = Screen(), console(terminal=True)
    with live_progress(screen, shown):
        assert "first" in out.getvalue()  # before the first repaint is due
        screen.text = "second"
        assert eventually(lambda: "second" in out.getvalue())
        screen.text = "last"
    shown.print("answer")

    written = out.getvalue()
    assert written.index("first") < written.index("second") < written.rindex("last")
    assert written.endswith(f"last\n{CURSOR_SHOWN}answer\n")


@pytest.mark.parametrize("terminal", [True, False])
def test_an_interrupted_run_still_shows_where_it_stopped(terminal: bool) -> None:
    screen, (shown, out) = Screen(), console(terminal=terminal)

    def run() -> None:
        screen.text = "stopped here"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), live_progress(screen, shown):
        run()

    assert "stopped here\n" in out.getvalue()


@pytest.mark.parametrize("terminal", [True, False])
def test_repainting_stops_with_the_block(terminal: bool) -> None:
    screen, (shown, _) = Screen(), console(terminal=terminal)
    with live_progress(screen, shown):
        time.sleep(0.1)
    renders = screen.renders
    time.sleep(0.8)

    assert screen.renders == renders


# The lines the view is made of.


def delegation(key: str, task: str = "look at the logs") -> Delegation:
    return Delegation(
        id=key,
        subagent_type="analyst",
        description=task,
        limits=Limits(timeout_s=5, report_max_chars=200, recursion_limit=5),
    )


def report(key: str, status: ReportStatus = "ok", **fields: Any) -> Report:
    return Report(delegation_id=key, subagent_type="analyst", status=status, summary="fine", **fields)


@pytest.fixture
def redis_client() -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis()
    yield client
    client.close()


@pytest.fixture
def client(redis_client: fakeredis.FakeRedis) -> DelegationClient:
    """The little of a client the tracker reads: its Redis, its prefix and its listener's states."""
    stand_in = SimpleNamespace(
        ledger=SimpleNamespace(client=redis_client), settings=SimpleNamespace(queue_prefix="tf"), states={}
    )
    return cast(DelegationClient, stand_in)


def publish(redis_client: fakeredis.FakeRedis, key: str, node: str, message: AIMessage | ToolMessage) -> None:
    ProgressPublisher(redis_client, "tf", key, [], ttl_s=60).publish(node, [message])


def call(*names: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": {}, "id": name} for name in names])


def test_a_step_is_described_by_what_the_subagent_did() -> None:
    assert describe_step(Step("model", [call("grep", "read_file")])) == "calling grep, read_file"
    assert describe_step(Step("tools", [ToolMessage("x", tool_call_id="c", name="grep")])) == (
        "got the result of grep"
    )
    assert describe_step(Step("tools", [ToolMessage("x", tool_call_id="c")])) == "got the result of a tool"
    assert describe_step(Step("model", [AIMessage(content="all fine")])) == "answering"


def test_counts_follow_the_listener_and_a_failure_of_any_kind_is_not_done(
    client: DelegationClient,
) -> None:
    tracker = DelegationTracker(client)
    for key in ("a", "b", "c", "d", "e"):
        tracker.dispatched(delegation(key))
    client.states.update(a="running", b="queued")
    tracker.reported(report("c"))
    tracker.reported(report("d", "cancelled"))

    assert tracker.counts() == (2, 1, 1, 1)
    assert progress_line(tracker).plain.splitlines()[0] == (
        "delegations  2 queued  ·  1 running  ·  1 done  ·  1 failed"
    )
    assert [r.delegation_id for r in tracker.reports] == ["c", "d"]


def test_a_running_delegation_shows_its_latest_step_until_a_newer_one(
    client: DelegationClient, redis_client: fakeredis.FakeRedis
) -> None:
    tracker = DelegationTracker(client)
    tracker.dispatched(delegation("a", "find the slowest endpoint"))
    client.states["a"] = "running"

    assert "starting" in tracker.running_lines()[0].plain
    publish(redis_client, "a", "model", call("grep"))
    assert tracker.running_lines()[0].plain == "  analyst  'find the slowest endpoint'  calling grep"
    assert tracker.running_lines()[0].plain.endswith("calling grep")  # nothing new: the last one stays
    publish(redis_client, "a", "tools", ToolMessage("x", tool_call_id="grep", name="grep"))
    assert tracker.running_lines()[0].plain.endswith("got the result of grep")


def test_only_the_first_running_delegations_get_a_line_the_rest_are_counted(
    client: DelegationClient,
) -> None:
    tracker = DelegationTracker(client)
    for index in range(SHOWN_RUNNING + 3):
        tracker.dispatched(delegation(f"d{index}"))
        client.states[f"d{index}"] = "running"
    tracker.dispatched(delegation("queued"))

    lines = [line.plain for line in tracker.running_lines()]
    assert len(lines) == SHOWN_RUNNING + 1
    assert lines[-1] == "  … and 3 more running"


def test_a_reported_delegation_leaves_the_view_and_its_steps_are_forgotten(
    client: DelegationClient, redis_client: fakeredis.FakeRedis
) -> None:
    tracker = DelegationTracker(client)
    tracker.dispatched(delegation("a"))
    client.states["a"] = "running"
    publish(redis_client, "a", "model", call("grep"))
    tracker.reported(report("a"))
    # A resumed run's delegation was sent by an earlier process; its steps go all the same.
    publish(redis_client, "old", "model", call("grep"))
    tracker.reported(report("old"))

    assert tracker.running_lines() == []
    assert redis_client.keys("tf:progress:*") == []


def test_the_table_has_a_row_per_report_with_where_its_full_text_is() -> None:
    table = delegation_table(
        [
            report("a", duration_s=1.5, worker="w1", full_report_path="/results/a.md", artifacts=("/x.csv",)),
            report("b", "timeout"),
        ]
    )
    shown, out = console(terminal=False, width=200)
    shown.print(table)

    rows = out.getvalue().splitlines()
    assert [column.header for column in table.columns][:3] == ["#", "subagent", "status"]
    assert any("ok" in row and "1.50 s" in row and "w1" in row and "/results/a.md" in row for row in rows)
    assert any("timeout" in row and "0.00 s" in row for row in rows)
