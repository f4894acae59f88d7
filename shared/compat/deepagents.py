"""deepagents internals taskforce relies on, written against deepagents 0.7.32.

- `settle_tool_descriptions`, covered by `tests/unit/test_compat_deepagents.py`, which fails if
  deepagents changes under it.
- The async subagents' own helpers (`deepagents.middleware.async_subagents`): the async task
  tools on workers (`orchestrator.delegation.async_tasks`) build their commands, results and task records
  with them, so that they answer exactly as deepagents' own; `tests/parity` compares the two."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from deepagents.middleware import async_subagents
from deepagents.middleware.filesystem import FilesystemMiddleware
from langchain.agents.middleware import AgentMiddleware
from langchain_core.tools import BaseTool

TERMINAL_STATUSES = async_subagents._TERMINAL_STATUSES
build_check_command = async_subagents._build_check_command
build_check_result = async_subagents._build_check_result
build_list_command = async_subagents._build_list_command
build_update_command = async_subagents._build_update_command
filter_tasks = async_subagents._filter_tasks
keep_cancelled = async_subagents._keep_cancelled
resolve_tracked_task = async_subagents._resolve_tracked_task
task_status = async_subagents._task_status
tasks_reducer = async_subagents._tasks_reducer
validate_agent_type = async_subagents._validate_agent_type

__all__ = [
    "TERMINAL_STATUSES",
    "build_check_command",
    "build_check_result",
    "build_list_command",
    "build_update_command",
    "filter_tasks",
    "keep_cancelled",
    "resolve_tracked_task",
    "settle_tool_descriptions",
    "task_status",
    "tasks_reducer",
    "validate_agent_type",
]


def settle_tool_descriptions(middleware: Iterable[AgentMiddleware]) -> None:
    """Give each filesystem middleware's `grep` tool, once, the description deepagents would
    give it on every model call.

    deepagents builds `grep` with the guidance for a backend that can execute, and on every model
    call over one that cannot (every backend a worker runs on) sends a copy with other guidance.
    A new tool object each call means langchain-core builds its schema model again whenever the
    summarization middleware counts the request's tokens: about 40% of a small subagent's run.
    The backend of a compiled agent never changes, so the copy deepagents makes is made here,
    before the agent is compiled, and deepagents then finds nothing to rewrite."""
    for found in middleware:
        if not isinstance(found, FilesystemMiddleware):
            continue
        names = {found._tool_name(tool) for tool in found.tools}
        _, executes, _ = found._unsupported_tools_and_execution_state(names)
        tools = cast(list[BaseTool | dict[str, Any]], list(found.tools))
        described = found._with_filtered_grep_description(tools, include_execution=executes)
        found.tools = cast(list[BaseTool], described)
