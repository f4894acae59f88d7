"""What reaches an agent's prompt from the shared files: a subagent's skills and the main
agent's memory, written before the run on both sides."""

from __future__ import annotations

import json

from tests.integration.conftest import task_call
from tests.parity.agents import ANALYST, SKILL_MARKER, STYLIST, skill_file
from tests.parity.harness import ParityEnv, Scenario, assert_parity, run_both, task_answers

CALM = skill_file(
    "calm-tone", "rewrite text in a calm tone", "# Calm tone\n\nShort sentences. No exclamation marks."
)


def test_a_subagent_sees_its_skills_listed_and_reads_one(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="skills",
            turns=[[task_call("s", "stylist", "rewrite: WE SHIP TODAY!!!")], "styled"],
            subagents=[STYLIST],
            files={"/skills/calm-tone/SKILL.md": CALM},
        ),
        parity,
    )
    assert_parity(both)
    # The stylist's model quotes its system prompt: the skill was listed, then read.
    answer = json.loads(task_answers(both.deepagents)["s"])
    assert answer["listing"] == [f"- **calm-tone**: {SKILL_MARKER} rewrite text in a calm tone"]
    assert answer["skill_paths"] == ["/skills/calm-tone/SKILL.md"]
    assert "No exclamation marks." in answer["skill_file"]


def test_the_main_agents_memory_is_in_its_prompt(parity: ParityEnv) -> None:
    memory = "# Team memory\n\nparity-memory: always report word counts in digits.\n"
    both = run_both(
        Scenario(
            name="memory",
            turns=[[task_call("m", "analyst", "two words")], "done"],
            subagents=[ANALYST],
            files={"/memories/AGENTS.md": memory},
            agent={"memory": ["/memories/AGENTS.md"]},
        ),
        parity,
    )
    assert_parity(both)  # includes the main model's system prompt on every turn
    prompts = both.taskforce.main_model.system_prompts()
    assert len(prompts) == 2
    assert all("parity-memory: always report word counts in digits." in prompt for prompt in prompts)
