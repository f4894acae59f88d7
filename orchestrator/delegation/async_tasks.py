"""Async subagents on the worker pools: deepagents' five async-task tools, backed by delegations.

deepagents runs an `AsyncSubAgent` as a run on an Agent Protocol server: `start_async_task`
creates a thread and a run there and returns at once, `check_async_task` and `list_async_tasks`
read the run, `update_async_task` starts another run on the same thread (the subagent sees its
whole conversation plus the new message), `cancel_async_task` cancels the run. taskforce offers
the same tools, with the same names, argument schemas, descriptions and return values, for
async specs that name a registry subagent as their `graph_id` and give no `url`: each run is a
delegation to the worker pools (`DelegationClient.start`), built exactly as a `task` call's.

- A task's id is a UUID derived from its first run's delegation id, so a replayed
  `start_async_task` call finds the delegation it already sent; `run_id` is the delegation id
  of the task's latest run.
- Status is read from the delegation's record without waiting (`DelegationClient.peek`); the
  report of a finished run stays there for `TASKFORCE_RESULT_EXPIRES`.
- A follow-up goes on from the subagent's conversation as the worker kept it
  (`workers.conversations`): from the latest run that finished `ok`, plus every message sent
  since that no run answered. A follow-up to a running task cancels the current run first,
  deepagents' default `update_strategy="interrupt"`.
- Task ids live in deepagents' `async_tasks` state key with its reducer, so they survive
  summarization and checkpoint/resume; what the follow-ups need besides is private state.

This class is deepagents' `AsyncSubAgentMiddleware` with the server calls replaced: its tools
are rebuilt around delegations, and what it reads from a server (a run and its thread) is
made from a delegation's report. So the state schema, the tool descriptions and schemas, the
return values and the task notifications before model calls (on the async path, as in
deepagents) are deepagents' own code, not a copy of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict, cast

from deepagents.middleware.async_subagents import (
    AsyncSubAgent,
    AsyncSubAgentMiddleware,
    AsyncSubAgentState,
    AsyncTask,
)
from deepagents.middleware.subagents import SubAgent
from langchain.agents.middleware.types import PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import Command
from langgraph_sdk.schema import Run, Thread

from orchestrator.delegation.building import DelegationBuilder
from orchestrator.delegation.client import DelegationClient
from orchestrator.parity import UnsupportedArgumentError
from shared.celery_app import CONNECTION_ERRORS
from shared.compat.deepagents import (
    TERMINAL_STATUSES,
    build_check_command,
    build_check_result,
    build_list_command,
    build_update_command,
    filter_tasks,
    keep_cancelled,
    resolve_tracked_task,
    task_status,
    tasks_reducer,
    validate_agent_type,
)
from shared.schemas import Inherited, Report

RUNS_KEY = "taskforce_async_runs"
_TASK_IDS = uuid.UUID("5b0c1f1e-6a47-4d5e-9a43-3f1f6f0d7a21")
"""The namespace of task ids, UUIDs derived from the id of each task's first delegation."""
_KEPT_STATUSES = frozenset({"success", "error", "timeout"})
"""Statuses a check saw, whose run can only have lost its record by expiring."""
_POOL_KEYS = frozenset({"name", "description", "graph_id", "update_strategy", "mode", "notify_parent"})
"""The `AsyncSubAgent` keys that mean something for a subagent on the worker pools."""
_GONE = object()
"""What `peek` finds of a delegation with no record."""


class TaskRuns(TypedDict):
    """What the tools keep of a task besides deepagents' `AsyncTask`: where a follow-up's
    conversation starts."""

    continues: NotRequired[str]
    """The latest run that finished `ok`, whose messages the worker kept."""
    asked: list[str]
    """What was sent to the task since that run, oldest first; none of it answered yet."""


class PoolAsyncState(AsyncSubAgentState):
    """deepagents' `async_tasks`, and, private to the tools but checkpointed with them, where
    each task's next follow-up starts."""

    taskforce_async_runs: Annotated[NotRequired[dict[str, TaskRuns]], PrivateStateAttr, tasks_reducer]


def task_id_of(first_run_id: str) -> str:
    return str(uuid.uuid5(_TASK_IDS, first_run_id))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run(run_id: str, status: str, **fields: str) -> Run:
    return cast(Run, {"run_id": run_id, "status": status, **fields})


_RUN_STATUS = {"ok": "success", "cancelled": "interrupted", "timeout": "timeout"}
"""A report's status as a server run's (`interrupted`: cancelled); any other failure is `error`."""
_EXPIRED = "its result is no longer kept (TASKFORCE_RESULT_EXPIRES)"


def observed(task: AsyncTask, found: Mapping[str, Report | None]) -> tuple[Run, Thread | None]:
    """What an Agent Protocol server would show of the task's latest run, made from what
    `DelegationClient.peek` found of its delegation: deepagents' own code then decides the
    task's status, its check result and its notification."""
    run_id = task["run_id"]
    if run_id not in found:  # no record: cancelled, or kept past its time
        expired = task["status"] in _KEPT_STATUSES
        return (_run(run_id, "error", error=_EXPIRED) if expired else _run(run_id, "interrupted")), None
    report = found[run_id]
    if report is None:
        return _run(run_id, "running"), None
    status = _RUN_STATUS.get(report.status, "error")
    if status == "success":
        answer = {"role": "assistant", "content": report.as_tool_content()}
        return _run(run_id, status), cast(Thread, {"status": "idle", "values": {"messages": [answer]}})
    if status == "error":
        return _run(run_id, status, error=report.as_tool_content()), None
    return _run(run_id, status), None


class PoolAsyncSubAgentMiddleware(AsyncSubAgentMiddleware[Any, Any]):
    """deepagents' async subagent middleware, running each task on the worker pools."""

    state_schema = PoolAsyncState

    def __init__(
        self, client: DelegationClient, builder: DelegationBuilder, async_subagents: list[AsyncSubAgent]
    ) -> None:
        """`async_subagents` name, in `graph_id`, the registry subagent each runs as; `builder`
        must know those types."""
        super().__init__(async_subagents=async_subagents)
        self._client = client
        self._builder = builder
        self._specs = {spec["name"]: spec for spec in async_subagents}
        # deepagents' own tools give the names, descriptions and argument schemas.
        reference = {tool.name: tool for tool in self.tools}
        self.tools = [
            _like(reference["start_async_task"], self._start),
            _like(reference["check_async_task"], self._check),
            _like(reference["update_async_task"], self._update),
            _like(reference["cancel_async_task"], self._cancel),
            _like(reference["list_async_tasks"], self._list),
        ]

    @property
    def name(self) -> str:
        # deepagents' slot: a custom middleware of this name replaces its own.
        return "AsyncSubAgentMiddleware"

    async def _aobserve_task(self, task: AsyncTask) -> tuple[Run, Thread | None] | None:
        """Read by deepagents' notification hooks (before model calls, on the async path)."""
        try:
            return await asyncio.to_thread(self._observe, task)
        except CONNECTION_ERRORS:
            return None  # checked again at the next model call, as deepagents does

    def _observe(self, task: AsyncTask) -> tuple[Run, Thread | None]:
        return observed(task, self._client.peek([task["run_id"]]))

    # The tools.

    def _start(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        error = validate_agent_type(self._specs, subagent_type)
        if error:
            return error
        delegation = self._builder.build(
            runtime.tool_call_id or uuid.uuid4().hex,
            description,
            self._specs[subagent_type]["graph_id"],
            context=runtime.context,
            config=runtime.config,
            state=runtime.state,
        )
        task_id = task_id_of(delegation.id)
        try:
            self._client.file_under_current_run([delegation])
            self._client.start(delegation.model_copy(update={"conversation": task_id}))
        except CONNECTION_ERRORS as e:
            return f"Failed to launch async subagent '{subagent_type}': {e}"
        now = _now()
        task: AsyncTask = {
            "task_id": task_id,
            "agent_name": subagent_type,
            "thread_id": task_id,
            "run_id": delegation.id,
            "status": "running",
            "created_at": now,
            "last_checked_at": now,
            "last_updated_at": now,
        }
        message = ToolMessage(
            f"Launched async subagent. task_id: {task_id}", tool_call_id=runtime.tool_call_id
        )
        runs: TaskRuns = {"asked": [description]}
        return Command(
            update={"messages": [message], "async_tasks": {task_id: task}, RUNS_KEY: {task_id: runs}}
        )

    def _check(self, task_id: str, runtime: ToolRuntime) -> str | Command[Any]:
        tracked = resolve_tracked_task(task_id, runtime)
        if isinstance(tracked, str):
            return tracked
        try:
            run, thread = self._observe(tracked)
        except CONNECTION_ERRORS as e:
            return f"Failed to get run status: {e}"
        result = keep_cancelled(tracked, build_check_result(run, tracked["thread_id"], thread))
        return build_check_command(result, tracked, run["run_id"], runtime.tool_call_id)

    def _update(self, task_id: str, message: str, runtime: ToolRuntime) -> str | Command[Any]:
        tracked = resolve_tracked_task(task_id, runtime)
        if isinstance(tracked, str):
            return tracked
        spec = self._specs.get(tracked["agent_name"])
        if spec is None:
            return f"Failed to update async subagent: no async subagent {tracked['agent_name']!r} any more"
        runs: TaskRuns = (runtime.state.get(RUNS_KEY) or {}).get(tracked["task_id"], {"asked": []})
        try:
            latest = self._client.peek([tracked["run_id"]]).get(tracked["run_id"], _GONE)
            if latest is None:  # still running: interrupted, as deepagents' default strategy does
                self._client.cancel([tracked["run_id"]])
            if isinstance(latest, Report) and latest.status == "ok":
                runs = {"continues": tracked["run_id"], "asked": []}
            follow_up = self._builder.build(
                runtime.tool_call_id or uuid.uuid4().hex,
                message,
                spec["graph_id"],
                context=runtime.context,
                config=runtime.config,
                state=runtime.state,
                conversation=tracked["task_id"],
                continues=runs.get("continues"),
                unanswered=tuple(runs["asked"]),
            )
            self._client.file_under_current_run([follow_up])
            self._client.start(follow_up)
        except CONNECTION_ERRORS as e:
            return f"Failed to update async subagent: {e}"
        command = build_update_command(
            tracked, _run(follow_up.id, "running"), "interrupt", runtime.tool_call_id
        )
        runs = {**runs, "asked": [*runs["asked"], message]}
        return Command(update={**cast(dict[str, Any], command.update), RUNS_KEY: {tracked["task_id"]: runs}})

    def _cancel(self, task_id: str, runtime: ToolRuntime) -> str | Command[Any]:
        tracked = resolve_tracked_task(task_id, runtime)
        if isinstance(tracked, str):
            return tracked
        try:
            # A run that already finished keeps its report, as a finished server run does.
            if self._client.peek([tracked["run_id"]]).get(tracked["run_id"], _GONE) is None:
                self._client.cancel([tracked["run_id"]])
        except CONNECTION_ERRORS as e:
            return f"Failed to cancel run: {e}"
        now = _now()
        updated: AsyncTask = {
            **tracked,
            "status": "cancelled",
            "last_checked_at": now,
            "last_updated_at": now,
        }
        message = ToolMessage(
            f"Cancelled async subagent task: {tracked['task_id']}", tool_call_id=runtime.tool_call_id
        )
        return Command(update={"messages": [message], "async_tasks": {tracked["task_id"]: updated}})

    def _list(
        self,
        runtime: ToolRuntime,
        status_filter: Literal["running", "pending", "waiting", "success", "error", "cancelled", "all"]
        | None = None,
    ) -> str | Command[Any]:
        tasks: dict[str, AsyncTask] = runtime.state.get("async_tasks") or {}
        filtered = filter_tasks(tasks, status_filter)
        if not filtered:
            return "No async subagent tasks tracked."
        live = [(task["status"], task["run_id"]) for task in filtered]
        unfinished = [task["run_id"] for task in filtered if task["status"] not in TERMINAL_STATUSES]
        try:
            found = self._client.peek(unfinished) if unfinished else {}
        except CONNECTION_ERRORS:
            return build_list_command(filtered, live, runtime.tool_call_id)  # cached, as deepagents
        for index, task in enumerate(filtered):
            if task["run_id"] in unfinished:
                live[index] = (task_status(*observed(task, found)), task["run_id"])
        return build_list_command(filtered, live, runtime.tool_call_id)


def _like(reference: BaseTool, func: Callable[..., str | Command[Any]]) -> StructuredTool:
    """A tool with deepagents' name, description and argument schema, running `func`; under
    `ainvoke` on a thread of its own, since it may wait on Redis."""

    async def coroutine(*args: Any, **kwargs: Any) -> str | Command[Any]:
        return await asyncio.to_thread(func, *args, **kwargs)

    return StructuredTool.from_function(
        name=reference.name,
        func=func,
        coroutine=coroutine,
        description=reference.description,
        infer_schema=False,
        args_schema=reference.args_schema,
    )


def async_targets(pooled: Sequence[AsyncSubAgent], known: Mapping[str, SubAgent]) -> dict[str, SubAgent]:
    """The registry specs the pooled async subagents run as, by name; refuses at build time,
    naming the argument, what the pools cannot do as deepagents would."""
    targets: dict[str, SubAgent] = {}
    for spec in pooled:
        name, graph_id = spec["name"], spec["graph_id"]
        extra = sorted(set(spec) - _POOL_KEYS)
        if extra:
            raise UnsupportedArgumentError(
                f"subagents: async subagent {name!r} has no 'url', so it runs on the worker pools, "
                f"where {extra} mean nothing; give it a 'url' to run it on an Agent Protocol server"
            )
        if spec.get("update_strategy", "interrupt") != "interrupt":
            raise UnsupportedArgumentError(
                f"subagents: async subagent {name!r}: update_strategy='enqueue' is not supported on the "
                "worker pools yet; leave it unset (a follow-up interrupts the current run)"
            )
        if spec.get("mode", "isolated") != "isolated":
            raise UnsupportedArgumentError(
                f"subagents: async subagent {name!r}: mode='fork' is not supported, the parent's "
                "messages do not travel to workers; remove it to start from the task alone"
            )
        if graph_id not in known:
            raise UnsupportedArgumentError(
                f"subagents: async subagent {name!r} has no 'url' and its graph_id {graph_id!r} names no "
                f"registry subagent (known: {', '.join(sorted(known))}); name one to run it on the "
                "worker pools, or give a 'url' to run it on an Agent Protocol server"
            )
        targets[graph_id] = known[graph_id]
    return targets


def refuse_pausing(
    pooled: Sequence[AsyncSubAgent], targets: Mapping[str, SubAgent], inherited: Mapping[str, Inherited]
) -> None:
    """A background task's subagent that stops for approval could be answered by nobody: the
    pools cannot yet take answers for async tasks (deepagents' `waiting` status)."""
    for spec in pooled:
        graph_id = spec["graph_id"]
        target: Mapping[str, Any] = targets[graph_id]
        taken = inherited[graph_id]
        approvals = target.get("interrupt_on", taken.interrupt_on)
        rules = target.get("permissions", taken.permissions)
        modes = [rule["mode"] if isinstance(rule, Mapping) else rule.mode for rule in rules or []]
        argument = "interrupt_on" if approvals else "permissions" if "interrupt" in modes else None
        if argument is not None:
            raise UnsupportedArgumentError(
                f"{argument}: async subagent {spec['name']!r} runs {graph_id!r}, which may then pause for "
                "approval, and nobody can answer a background task on the worker pools yet; give "
                f"subagent {graph_id!r} its own {argument} without approvals"
            )
