"""The default general-purpose subagent runs on the main agent's model with the main agent's
tools, in one process and on a worker (which imports both by their module-level names)."""

from __future__ import annotations

from typing import Any, cast

from deepagents import create_deep_agent
from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from tests.parity.agents import GENERAL, count_words
from tests.parity.harness import ParityEnv, Run, comparable


def _run(side: str, agent: Any, files: Any) -> Run:
    result = agent.invoke({"messages": [HumanMessage(content="delegate: three little words")]})
    return Run(side, "", [result], files, cast(Any, None))


def test_general_purpose_takes_the_main_agents_model_and_tools(parity: ParityEnv) -> None:
    settings = parity.settings.model_copy(update={"general_purpose": True})
    in_process = create_deep_agent(GENERAL, [count_words], backend=parity.deepagents_files.backend())
    on_workers = create_orchestrator(GENERAL, [count_words], settings=settings)

    expected = comparable(_run("deepagents", in_process, parity.deepagents_files))
    seen = comparable(_run("taskforce", on_workers, parity.taskforce_files))

    assert seen == expected
    assert expected[-1]["content"] == "main: general-purpose: 3 words"
