"""Scripted chat models for main agents in tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolCall


class ScriptedModel(GenericFakeChatModel):
    """Plays back its turns, one per call, and accepts any tools: deepagents binds its own and
    taskforce's `task` tool, which a script does not need to see. One instance per agent run."""

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self


def tool_call(name: str, call_id: str, **args: Any) -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def scripted(*turns: list[ToolCall] | str) -> ScriptedModel:
    """A model whose turns are text answers or lists of tool calls, in order."""
    messages = [
        AIMessage(content=turn) if isinstance(turn, str) else AIMessage(content="", tool_calls=turn)
        for turn in turns
    ]
    return ScriptedModel(messages=iter(messages))
