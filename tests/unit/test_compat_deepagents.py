"""The deepagents internals `shared.compat.deepagents` relies on still behave as it expects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepagents import create_deep_agent
from deepagents.middleware.subagents import SubAgent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import BaseTool
from pydantic import Field

from shared.files.backend import FilesBackend
from shared.files.memory import MemoryStore
from tests.support.models import ScriptedModel
from workers.subagents import build_subagent


class ToolRecordingModel(ScriptedModel):
    """Keeps the tools of each model call, as langchain binds them per request."""

    bound: list[dict[str, BaseTool]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        self.bound.append({tool.name: tool for tool in tools if isinstance(tool, BaseTool)})
        return self


def _recorder() -> ToolRecordingModel:
    return ToolRecordingModel(messages=iter([AIMessage(content="one"), AIMessage(content="two")]))


SPEC: SubAgent = {"name": "reader", "description": "reads", "system_prompt": "Read.", "tools": []}


def test_a_built_subagent_sends_deepagents_grep_description_without_copying_the_tool() -> None:
    """If deepagents rewrites `grep` per call again (or stops needing to), the identity or the
    description below changes: settling the description must then be read again."""
    backend = FilesBackend(MemoryStore("compat"))
    model = _recorder()
    graph = build_subagent({**SPEC, "model": model}, "offline", backend).graph
    graph.invoke({"messages": [HumanMessage("first")]})
    graph.invoke({"messages": [HumanMessage("second")]})
    first, second = model.bound
    assert first["grep"] is second["grep"]

    in_process = _recorder()
    agent = create_deep_agent(in_process, backend=backend)
    agent.invoke({"messages": [HumanMessage("first")]})
    agent.invoke({"messages": [HumanMessage("second")]})
    deepagents_first, deepagents_second = in_process.bound
    assert first["grep"].description == deepagents_first["grep"].description
    assert deepagents_first["grep"] is not deepagents_second["grep"], "deepagents no longer copies grep"
