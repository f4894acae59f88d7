"""The shape of deepagents' content-builder-agent and nvidia_deep_agent examples in one run: a
main agent with memory, skills and a tool of its own, structured output of its own, and several
subagents, each with its own tools, model, skills or structured output, delegated in parallel
and then in sequence, handing work over through files."""

from __future__ import annotations

import json

from langchain_core.messages import ToolCall

from tests.integration.conftest import read_call, task_call
from tests.parity.agents import (
    EDITOR,
    FACT_CHECKER,
    GRADER,
    RESEARCHER,
    SKILL_MARKER,
    STYLIST,
    Grade,
    Publication,
    generate_cover,
    skill_file,
)
from tests.parity.harness import ParityEnv, Scenario, assert_parity, run_both, snapshot, task_answers

MEMORY = "# Content team\n\nparity-memory: every post gets a cover and a grade before it is published.\n"
SKILLS = {
    "/skills/blog-post/SKILL.md": skill_file(
        "blog-post", "structure a blog post", "# Blog post\n\nHook, body, call to action."
    ),
    "/skills/calm-tone/SKILL.md": skill_file(
        "calm-tone", "rewrite text in a calm tone", "# Calm tone\n\nNo exclamation marks."
    ),
}
POST = "/content/blog/celery-and-redis.md"


def _call(call_id: str, name: str, **args: object) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def test_a_content_builder_run_with_every_kind_of_subagent(parity: ParityEnv) -> None:
    turns = [
        [
            task_call("research", "content-researcher", "Celery"),
            task_call("facts", "fact-checker", "Redis"),
            task_call("style", "stylist", "rewrite: CELERY + REDIS = FAST!!!"),
        ],
        [
            read_call("notes", "/research/celery.md"),
            _call("cover", "generate_cover", title="Celery and Redis"),
        ],
        [task_call("grade", "grader", "grade the post about Celery and Redis before publishing")],
        [
            _call(
                "post",
                "write_file",
                file_path=POST,
                content="# Celery and Redis\n\nCelery queues, Redis holds.\n",
            )
        ],
        [_call("answer", "Publication", title="Celery and Redis", path=POST, verdict="publish")],
    ]
    both = run_both(
        Scenario(
            name="content-builder",
            turns=turns,
            subagents=[RESEARCHER, FACT_CHECKER, STYLIST, GRADER],
            files={"/memories/AGENTS.md": MEMORY, **SKILLS},
            agent={
                "tools": [generate_cover],
                "memory": ["/memories/AGENTS.md"],
                "skills": ["/skills/"],
                "response_format": Publication,
            },
        ),
        parity,
    )
    assert_parity(both)

    answers = task_answers(both.deepagents)
    assert answers["research"] == "researched 'Celery'; notes in /research/celery.md"
    assert answers["facts"] == "fact-checker: Redis is an in-memory data store."
    assert json.loads(answers["style"])["listing"] == [
        f"- **blog-post**: {SKILL_MARKER} structure a blog post",
        f"- **calm-tone**: {SKILL_MARKER} rewrite text in a calm tone",
    ]
    assert Grade.model_validate_json(answers["grade"]).verdict == "publish"
    assert both.deepagents.final["structured_response"] == Publication(
        title="Celery and Redis", path=POST, verdict="publish"
    )
    # The main agent's prompt held its memory and its own skills on every turn.
    prompts = both.deepagents.main_model.system_prompts()
    assert len(prompts) == len(turns)
    assert all("parity-memory" in prompt and "**blog-post**" in prompt for prompt in prompts)
    assert set(snapshot(both.deepagents)) == {"/research/celery.md", POST, "/memories/AGENTS.md", *SKILLS}


def test_a_subagent_on_a_provider_model_gets_its_harness_profile(parity: ParityEnv) -> None:
    """The examples run subagents on provider models (Claude, Nemotron), for which deepagents
    has harness profiles; the editor's model reports the system prompt it was given."""
    both = run_both(
        Scenario(
            name="profiled",
            turns=[[task_call("edit", "editor", "tighten the launch post")], "edited"],
            subagents=[EDITOR],
        ),
        parity,
    )
    assert_parity(both)
    seen = json.loads(task_answers(both.taskforce)["edit"])
    assert "use_parallel_tool_calls" in seen["after_the_specs_prompt"], (
        "the profile's suffix reached the worker"
    )
