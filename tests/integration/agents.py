"""Subagents for the integration tests, imported by the test process and by real workers
(`TASKFORCE_SUBAGENTS=tests.integration.agents:SUBAGENTS`).

Their models are deterministic functions of what they receive, not scripts: one instance per
agent serves many delegations at once on a worker, so it must hold no per-run state.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from pydantic import SecretStr


class _DeterministicModel(BaseChatModel):
    delay_s: float = 0.0
    tool_name: str | None = None

    @property
    def _llm_type(self) -> str:
        return "taskforce-test"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **_: Any
    ) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if self.tool_name and not results:
            return AIMessage(content="", tool_calls=[{"name": self.tool_name, "args": {}, "id": "call-1"}])
        if results:
            return AIMessage(content=str(results[-1].content))
        seen = {
            "messages": [[m.type, m.content if m.type != "system" else ""] for m in messages],
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        return AIMessage(
            content=json.dumps(seen),
            usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        )


@tool
def show_context(runtime: ToolRuntime) -> str:
    """Report the runtime context this subagent received, secrets included on purpose: the
    worker must scrub them from whatever leaves it."""
    context = runtime.context or {}
    shown = {
        key: (value.get_secret_value() if isinstance(value, SecretStr) else value)
        for key, value in context.items()
    }
    kinds = {key: type(value).__name__ for key, value in context.items()}
    return json.dumps({"context": shown, "kinds": kinds, "pid": os.getpid()})


@tool
def explode(runtime: ToolRuntime) -> str:
    """Fail, mentioning a secret in the error, as careless tools do."""
    secret = (runtime.context or {}).get("api_key")
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    raise RuntimeError(f"cannot reach the service with key {value}")


@tool
def show_limits(runtime: ToolRuntime) -> str:
    """Report the recursion limit this subagent runs under."""
    return json.dumps({"recursion_limit": runtime.config.get("recursion_limit")})


class _VerboseModel(_DeterministicModel):
    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        return AIMessage(content="".join(f"line {n:05d} of a long report\n" for n in range(400)))


def _spec(name: str, model: BaseChatModel, tools: list[Any] | None = None) -> dict[str, Any]:
    return {"name": name, "description": f"test subagent {name}", "model": model, "tools": tools or []}


SUBAGENTS = [
    _spec("inspector", _DeterministicModel()),
    _spec("sleeper", _DeterministicModel(delay_s=1.0)),
    _spec("slowpoke", _DeterministicModel(delay_s=30.0)),
    _spec("researcher", _DeterministicModel(tool_name="show_context"), [show_context]),
    _spec("writer", _DeterministicModel(tool_name="show_context"), [show_context]),
    _spec("crasher", _DeterministicModel(tool_name="explode"), [explode]),
    _spec("limits", _DeterministicModel(tool_name="show_limits"), [show_limits]),
    _spec("verbose", _VerboseModel()),
]
