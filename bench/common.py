"""What the benchmarks share, so that they pick subagents, isolate themselves and report figures
the same way, and a change to one of these rules reaches every table."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, cast

from deepagents.middleware.subagents import SubAgent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from shared.settings import Settings
from tests.integration.agents import SUBAGENTS

TEST_REGISTRY = "tests.integration.agents:SUBAGENTS"
"""The integration tests' subagents, which worker processes import by this path."""


def test_subagents(*names: str) -> list[SubAgent]:
    """The registry's specs of these names, the very objects the workers load, so that deepagents
    in-process runs exactly what taskforce's workers run."""
    specs = [spec for spec in SUBAGENTS if spec["name"] in names]
    if len(specs) != len(names):
        raise ValueError(f"not all of {names} are in {TEST_REGISTRY}")
    return cast(list[SubAgent], specs)


def isolated_settings(**values: Any) -> Settings:
    """Settings from `values` and defaults alone: every `TASKFORCE_*` variable is dropped from
    this process's environment (workers inherit it) and `.env` is not read, so a benchmark
    always starts its own Redis and never touches a shared one."""
    for name in [name for name in os.environ if name.startswith("TASKFORCE_")]:
        del os.environ[name]
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def load_text(averages: tuple[float, float, float]) -> str:
    """A load average as printed under every table: on a shared machine it says how much the
    figures above it can be trusted."""
    return " ".join(f"{value:.2f}" for value in averages)


LOOP_ITERATIONS = 300_000


def loop_cpu_ms() -> float:
    """The CPU time of a fixed pure-Python loop, the fastest of five, in ms.

    On a virtual machine whose host is busy the same work takes more CPU time, and neither the
    load average nor a process's CPU time shows it: on the 2-core machine of docs/benchmarks.md
    this loop took from 13 to 22 ms within a minute, idle. Printed beside the figures, it says
    how fast the cores were while they were measured."""
    spent = []
    for _ in range(5):
        started = time.process_time()
        total = 0
        for number in range(LOOP_ITERATIONS):
            total += number * number
        spent.append(time.process_time() - started)
    return min(spent) * 1000


class OneTurn(BaseChatModel):
    """A main agent's model that delegates `calls` in its first turn and answers "done" to every
    later call, a summarization request included (a main agent whose history outgrows the window
    is summarized, on both sides). Notes the tokens of each input it is sent."""

    calls: list[dict[str, Any]]
    inputs: list[int] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "taskforce-bench"

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        self.inputs.append(count_tokens_approximately(messages))
        first = len(self.inputs) == 1
        message = AIMessage(content="", tool_calls=self.calls) if first else AIMessage(content="done")
        return ChatResult(generations=[ChatGeneration(message=message)])


def task_calls(subagent: str, descriptions: Sequence[str]) -> list[dict[str, Any]]:
    """One model turn's `task` calls, one per description."""
    return [
        {"name": "task", "args": {"description": text, "subagent_type": subagent}, "id": f"c{n}"}
        for n, text in enumerate(descriptions)
    ]
