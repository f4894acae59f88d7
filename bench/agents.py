"""A subagent whose model takes a fixed time per call: it isolates the cost of delegation
itself (queueing, rebuilding, reporting) from any real model latency."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool

MODEL_SECONDS = float(os.environ.get("BENCH_MODEL_SECONDS", "1.0"))


class FixedLatencyModel(BaseChatModel):
    seconds: float = MODEL_SECONDS

    @property
    def _llm_type(self) -> str:
        return "bench-fixed-latency"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **_: Any
    ) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        time.sleep(self.seconds)
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=f"done: {messages[-1].content}"))]
        )


SUBAGENTS = [
    {
        "name": "sleeper",
        "description": "Takes a fixed time, then answers.",
        "model": FixedLatencyModel(),
        "tools": [],
    }
]
