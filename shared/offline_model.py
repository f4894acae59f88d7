"""`offline`: a deterministic chat model, so the demo and the tests run with no API key.

It follows a fixed, documented policy instead of reasoning, which is enough to exercise every
moving part of taskforce (fan-out, tools, shared files, reports) end to end:

1. With the `task` tool bound and no delegation made yet, it delegates every bullet line
   (`- ...`) of the latest request, in one turn, to the subagent type the request names
   (else the first specialised type, else general-purpose).
2. It calls, once each, the tools its instructions (system prompt or request) name, filling
   string arguments from the request: the first absolute path for arguments named like a
   path, the request itself otherwise. Tools nobody names are never called.
3. If the request says "write ... to /some/path" and `write_file` is bound, it writes what
   the tools returned to that path.
4. Then it answers with the first line of every tool result and the files it wrote. Every
   answer starts with `[offline model]` so nobody mistakes it for a real model's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

OFFLINE_MARK = "[offline model]"
_HANDLED_APART = frozenset({"task", "write_file"})
_BULLET = re.compile(r"^\s*[-*]\s+(.+?)\s*$", re.MULTILINE)
_ABSOLUTE_PATH = re.compile(r"(?<![\w/])(/[\w.\-/]*\w)")
_WRITE_TARGET = re.compile(r"\bwrite\b[^\n]*?\bto\s+(/[\w.\-/]+\w)", re.IGNORECASE)
_AGENT_LINE = re.compile(r"^- ([\w.\-]+): ", re.MULTILINE)


class OfflineChatModel(BaseChatModel):
    """A model that needs no network; see the module docstring for what it does."""

    tool_schemas: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "taskforce-offline"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """`offline:offline`, as LangSmith and the pool's model limits name it."""
        return {
            **super()._get_ls_params(stop=stop, **kwargs),
            "ls_provider": "offline",
            "ls_model_name": "offline",
        }

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(update={"tool_schemas": [convert_to_openai_tool(t) for t in tools]})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._decide(messages)
        prompt_chars = sum(len(str(m.content)) for m in messages)
        output_chars = len(str(message.content)) + len(json.dumps(message.tool_calls))
        message.usage_metadata = {
            "input_tokens": prompt_chars // 4,
            "output_tokens": output_chars // 4,
            "total_tokens": (prompt_chars + output_chars) // 4,
        }
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _tools(self) -> dict[str, dict[str, Any]]:
        return {schema["function"]["name"]: schema["function"] for schema in self.tool_schemas}

    def _decide(self, messages: list[BaseMessage]) -> AIMessage:
        last_human = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
        request = str(messages[last_human].text)
        turn = messages[last_human + 1 :]
        called = {call["name"] for m in turn if isinstance(m, AIMessage) for call in m.tool_calls}
        results = [m for m in turn if isinstance(m, ToolMessage) and m.name != "write_file"]
        tools = self._tools()
        instructions = "\n".join(str(m.text) for m in messages[: last_human + 1])
        round_number = sum(1 for m in turn if isinstance(m, AIMessage))

        if "task" in tools and "task" not in called:
            calls = self._delegations(request, tools["task"], round_number)
            if calls:
                return AIMessage(content="", tool_calls=calls)
        own = [
            name
            for name in tools
            if name not in _HANDLED_APART
            and name not in called
            and re.search(rf"\b{re.escape(name)}\b", instructions)
        ]
        fillable = [
            (name, args) for name in own if (args := _fill_arguments(tools[name], request)) is not None
        ]
        if fillable and not results:
            return AIMessage(
                content="",
                tool_calls=[_call(name, args, round_number, i) for i, (name, args) in enumerate(fillable)],
            )
        target = _WRITE_TARGET.search(request)
        if target and results and "write_file" in tools and "write_file" not in called:
            content = "\n\n".join(str(m.text) for m in results)
            return AIMessage(
                content="",
                tool_calls=[
                    _call("write_file", {"file_path": target.group(1), "content": content}, round_number, 0)
                ],
            )
        return AIMessage(
            content=_answer(request, results, target.group(1) if target and "write_file" in called else None)
        )

    def _delegations(self, request: str, task_tool: dict[str, Any], round_number: int) -> list[ToolCall]:
        items = _BULLET.findall(request)
        agent_types = _AGENT_LINE.findall(task_tool.get("description", ""))
        named = [name for name in agent_types if name in request]
        specialised = [name for name in agent_types if name != "general-purpose"]
        chosen = (named or specialised or agent_types or ["general-purpose"])[0]
        return [
            _call("task", {"description": item, "subagent_type": chosen}, round_number, index)
            for index, item in enumerate(items)
        ]


def _call(name: str, args: dict[str, Any], round_number: int, index: int) -> ToolCall:
    return ToolCall(name=name, args=args, id=f"offline-{round_number}-{index}-{name}", type="tool_call")


def _fill_arguments(function: dict[str, Any], request: str) -> dict[str, Any] | None:
    parameters = function.get("parameters", {})
    properties: dict[str, Any] = parameters.get("properties", {})
    paths = _ABSOLUTE_PATH.findall(request)
    args: dict[str, Any] = {}
    for name in parameters.get("required", []):
        if properties.get(name, {}).get("type") != "string":
            return None
        looks_like_path = "path" in name or "file" in name
        args[name] = paths[0] if looks_like_path and paths else request
    return args


def _first_line(text: str) -> str:
    lines = (line.strip().lstrip("-* ") for line in text.splitlines())
    return next((line for line in lines if line and line != OFFLINE_MARK), "(empty)")[:300]


def _answer(request: str, results: list[ToolMessage], written: str | None) -> str:
    lines = [OFFLINE_MARK]
    if not results:
        lines.append(f"Nothing to do with tools for: {_first_line(request)}")
    lines.extend(f"- {_first_line(str(m.text))}" for m in results)
    if written:
        lines.append(f"Full text written to {written}.")
    return "\n".join(lines)
