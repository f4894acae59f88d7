"""Delegation itself: what the main agent reads back from one subagent, from several at once,
and from a subagent that leaves a file behind, is the same in one process and on workers."""

from __future__ import annotations

import pytest
from langchain_core.messages import BaseMessage, ToolMessage

from tests.integration.conftest import read_call, task_call
from tests.parity.agents import ANALYST, FACT_CHECKER, REVERSER, SCRIBE, note_path
from tests.parity.harness import ParityEnv, Scenario, assert_parity, run_both, snapshot, task_answers


def test_one_subagent_with_its_own_tool_and_model(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="one",
            turns=[[task_call("t1", "analyst", "count the words of this short sentence")], "done"],
            subagents=[ANALYST],
        ),
        parity,
    )
    assert_parity(both)
    # Both sides agreeing is not enough: the subagent must really have used its own tool.
    assert task_answers(both.deepagents) == {"t1": "analyst: 7 words"}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
def test_several_subagents_delegated_in_one_turn(parity: ParityEnv, asynchronous: bool) -> None:
    """Both entry points: deepagents' `task` and `atask`, taskforce's blocking and async waits."""
    calls = [
        task_call("a", "analyst", "one two three"),
        task_call("r", "reverser", "first second third"),
        task_call("f", "fact-checker", "Celery"),
    ]
    both = run_both(
        Scenario(
            name="parallel",
            turns=[calls, "all three answered"],
            subagents=[ANALYST, REVERSER, FACT_CHECKER],
            asynchronous=asynchronous,
        ),
        parity,
    )
    assert_parity(both)
    assert task_answers(both.deepagents) == {
        "a": "analyst: 3 words",
        "r": "reverser: third second first",
        "f": "fact-checker: Celery is a distributed task queue for Python.",
    }


def test_a_file_a_subagent_writes_is_read_by_the_main_agent(parity: ParityEnv) -> None:
    task = "release notes for 1.0"
    path = note_path(task)
    both = run_both(
        Scenario(
            name="write-read",
            turns=[[task_call("w", "scribe", task)], [read_call("r", path)], "read it"],
            subagents=[SCRIBE],
        ),
        parity,
    )
    assert_parity(both)
    assert snapshot(both.deepagents) == {path: f"# {task}\n".encode()}
    read = _tool_message(both.deepagents.messages, "r")
    assert f"# {task}" in str(read.content)
    # The documented difference is really there, and accounted for: the file is a note.
    report = _tool_message(both.taskforce.messages, "w")
    assert report.artifact["artifacts"] == [path]
    assert str(report.content).endswith(f"\n\nFiles written: {path}")


def _tool_message(messages: list[BaseMessage], call_id: str) -> ToolMessage:
    return next(m for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == call_id)
