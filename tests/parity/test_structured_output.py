"""A subagent spec with `response_format`: the main agent gets the structured response as
JSON, as deepagents hands it over."""

from __future__ import annotations

from tests.integration.conftest import task_call
from tests.parity.agents import GRADER, Grade
from tests.parity.harness import ParityEnv, Scenario, assert_parity, run_both, task_answers


def test_a_subagents_structured_response_reaches_the_main_agent(parity: ParityEnv) -> None:
    task = "grade the first draft of the launch post"
    both = run_both(
        Scenario(name="structured", turns=[[task_call("g", "grader", task)], "graded"], subagents=[GRADER]),
        parity,
    )
    assert_parity(both)
    assert Grade.model_validate_json(task_answers(both.deepagents)["g"]) == Grade(
        subject=task, score=8, verdict="publish"
    )
