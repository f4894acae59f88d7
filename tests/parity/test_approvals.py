"""Human approval and what a subagent takes from the main agent: the same questions, the same
answers' effects, the same permission errors, in one process and on workers."""

from __future__ import annotations

from typing import Any

import pytest
from deepagents.middleware.filesystem import FilesystemPermission

from tests.integration.conftest import task_call
from tests.parity.agents import BARE, GATEKEEPER, SCRIBE, count_words, note_path
from tests.parity.harness import (
    ParityEnv,
    Scenario,
    assert_parity,
    interrupts,
    run_both,
    snapshot,
    task_answers,
)

APPROVE = {"decisions": [{"type": "approve"}]}
DECISIONS: dict[str, tuple[dict[str, Any], str]] = {
    "approve": (APPROVE, "gatekeeper: 3 words"),
    "reject": (
        {"decisions": [{"type": "reject", "message": "not now"}]},
        "not now",
    ),
    "edit": (
        {
            "decisions": [
                {"type": "edit", "edited_action": {"name": "count_words", "args": {"text": "just two"}}}
            ]
        },
        "Tool response:\n2 words",
    ),
}


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_subagents_own_approval_asks_the_same_and_its_answer_does_the_same(
    parity: ParityEnv, decision: str
) -> None:
    answer, expected = DECISIONS[decision]
    both = run_both(
        Scenario(
            name=f"approval-{decision}",
            turns=[[task_call("g", "gatekeeper", "one two three")], "done"],
            subagents=[GATEKEEPER],
            resumes=[answer],
        ),
        parity,
    )
    assert_parity(both)
    [[question]] = [found for found in interrupts(both.deepagents) if found]
    assert question["action_requests"][0]["args"] == {"text": "one two three"}
    assert expected in task_answers(both.deepagents)["g"]


def test_a_spec_without_its_own_takes_the_main_agents_tools_and_approvals(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="inherited-approval",
            turns=[[task_call("b", "bare", "four little words here")], "done"],
            subagents=[BARE],
            agent={"tools": [count_words], "interrupt_on": {"count_words": True}},
            resumes=[APPROVE],
        ),
        parity,
    )
    assert_parity(both)
    assert any(interrupts(both.taskforce)), "the inherited approval paused the subagent on its worker"
    assert task_answers(both.taskforce)["b"] == "bare: 4 words"


@pytest.mark.parametrize("mode", ["deny", "interrupt"])
def test_the_main_agents_permissions_hold_in_a_spec_without_its_own(parity: ParityEnv, mode: str) -> None:
    rule = FilesystemPermission(operations=["write"], paths=["/notes/**"], mode=mode)  # type: ignore[arg-type]
    task = f"minutes of the {mode} meeting"
    both = run_both(
        Scenario(
            name=f"inherited-permissions-{mode}",
            turns=[[task_call("s", "scribe", task)], "done"],
            subagents=[SCRIBE],
            agent={"permissions": [rule]},
            resumes=[APPROVE] if mode == "interrupt" else [],
        ),
        parity,
    )
    assert_parity(both)
    answer = task_answers(both.taskforce)["s"]
    if mode == "deny":
        assert "permission denied" in answer.lower()
        assert snapshot(both.taskforce) == {}
    else:
        assert any(interrupts(both.taskforce))
        assert note_path(task) in answer
