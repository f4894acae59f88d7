"""Which subagents run step by step on a thread (`workers.stepwise`) and which on the event loop."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool, tool

from shared.files import FilesBackend
from shared.files.memory import MemoryStore
from shared.schemas import Delegation, Limits
from workers import runner as runner_module
from workers.runner import Attempt, run_delegation
from workers.subagents import SubagentCache, is_sync


class SyncModel(BaseChatModel):
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "sync"

    def bind_tools(self, tools: Any, **kwargs: Any) -> SyncModel:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="sync answer"))])


class AsyncModel(SyncModel):
    """A provider's kind: an async client of its own."""

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        self.calls += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="async answer"))])


@tool
def plain() -> str:
    """A sync tool."""
    return "plain"


async def _fetch() -> str:
    return "fetched"


def _fetch_sync() -> str:
    return "fetched"


ASYNC_ONLY = StructuredTool.from_function(coroutine=_fetch, name="fetch", description="Fetch.")
BOTH = StructuredTool.from_function(func=_fetch_sync, coroutine=_fetch, name="fetch", description="Fetch.")


class AsyncOnlyHook(AgentMiddleware):
    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        return await handler(request)


class BothHooks(AsyncOnlyHook):
    def wrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]
    ) -> ModelResponse:
        return handler(request)


@pytest.mark.parametrize(
    ("model", "tools", "middleware", "expected"),
    [
        (SyncModel(), [plain], [BothHooks()], True),
        (AsyncModel(), [plain], [], False),
        (SyncModel(), [ASYNC_ONLY], [], False),
        (SyncModel(), [BOTH], [], False),
        (SyncModel(), [], [AsyncOnlyHook()], False),
        ("openai:gpt-5", [], [], False),
    ],
    ids=[
        "all sync",
        "async model",
        "async-only tool",
        "tool with both",
        "async-only hook",
        "no model object",
    ],
)
def test_is_sync(model: object, tools: list[Any], middleware: list[AgentMiddleware], expected: bool) -> None:
    assert is_sync(model, tools, middleware) is expected


def _delegation(subagent: str, *, caller_async: bool = False) -> Delegation:
    return Delegation(
        caller_async=caller_async,
        id=f"thread-1:{subagent}",
        subagent_type=subagent,
        description="Answer.",
        limits=Limits(timeout_s=10, report_max_chars=300, recursion_limit=20),
    )


@pytest.mark.parametrize(
    ("model", "caller_async", "on_the_loop"),
    [(SyncModel(), False, False), (AsyncModel(), False, True), (SyncModel(), True, True)],
    ids=["sync subagent", "async model", "main agent under ainvoke"],
)
def test_a_sync_subagent_of_a_sync_caller_runs_off_the_loop_and_any_other_on_it(
    model: SyncModel, caller_async: bool, on_the_loop: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_runs: list[object] = []
    run_on_loop = runner_module._LOOP.run

    def counted(*args: Any, **kwargs: Any) -> Any:
        loop_runs.append(args)
        return run_on_loop(*args, **kwargs)

    monkeypatch.setattr(runner_module._LOOP, "run", counted)
    backend = FilesBackend(MemoryStore(uuid.uuid4().hex))
    specs: list[Any] = [
        {
            "name": "answerer",
            "description": "answers",
            "system_prompt": "Answer.",
            "model": model,
            "tools": [],
        }
    ]

    report = run_delegation(
        _delegation("answerer", caller_async=caller_async),
        SubagentCache(specs, "offline", backend),
        backend,
        Attempt("w", 1),
    )

    assert report.status == "ok"
    assert report.summary == ("async answer" if isinstance(model, AsyncModel) else "sync answer")
    assert bool(loop_runs) is on_the_loop
