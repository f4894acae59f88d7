"""Scripted chat models for main agents in tests and benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel


class ScriptedModel(GenericFakeChatModel):
    """Plays back its turns, one per call, and accepts any tools: deepagents binds its own and
    taskforce's `task` tool, which a script does not need to see. One instance per agent run."""

    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self
