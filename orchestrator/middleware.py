"""The `task` tool, sent over Celery: a stand-in for deepagents' `SubAgentMiddleware`.

It carries the same name, so `create_deep_agent` puts it where its own would go, and the same
tool name, schema and description format, so models and prompts see no difference.

Every delegation of a model turn is sent the moment the model emits it (in `after_model`),
so all of them run on the pool at once; the tool calls afterwards only wait for their reports.
LangGraph runs a handful of tool calls at a time, and without this the pool would never see
more than that many delegations. The job ids live in graph state, so a resumed thread finds
jobs that were already running instead of sending them again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, Protocol

from deepagents.middleware.subagents import TASK_TOOL_DESCRIPTION, TaskToolSchema
from langchain.agents import AgentState
from langchain.agents.middleware.types import AgentMiddleware, PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command

from orchestrator.client import CONNECTION_ERRORS, DelegationClient
from shared.context import context_for, validate_context
from shared.schemas import Delegation, Limits, Report

JOBS_KEY = "taskforce_jobs"
DEFAULT_RECURSION_LIMIT = 1000
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")


def _merge_jobs(current: dict[str, Any] | None, update: dict[str, Any] | None) -> dict[str, Any]:
    """Jobs by tool call id; a `None` value marks a job whose report has arrived."""
    merged = {**(current or {}), **(update or {})}
    return {key: value for key, value in merged.items() if value is not None}


class DelegationState(AgentState[Any]):
    taskforce_jobs: Annotated[NotRequired[dict[str, Any]], PrivateStateAttr, _merge_jobs]


class DelegationListener(Protocol):
    """Told about every delegation as it goes out and as its report comes back."""

    def dispatched(self, delegation: Delegation, task_id: str) -> None: ...

    def reported(self, report: Report, task_id: str) -> None: ...


class CeleryDelegationMiddleware(AgentMiddleware[DelegationState, Any, Any]):
    state_schema = DelegationState

    def __init__(
        self,
        client: DelegationClient,
        subagents: Sequence[tuple[str, str]],
        *,
        listener: DelegationListener | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._settings = client.settings
        self._descriptions = dict(subagents)
        self._listener = listener
        listing = "\n".join(f"- {name}: {description}" for name, description in subagents)
        self.tools = [
            StructuredTool.from_function(
                name="task",
                func=self._task,
                coroutine=self._atask,
                description=TASK_TOOL_DESCRIPTION.format(available_agents=listing),
                infer_schema=False,
                args_schema=TaskToolSchema,
            )
        ]

    @property
    def name(self) -> str:
        # deepagents swaps in custom middleware by name: this takes the SubAgentMiddleware slot.
        return "SubAgentMiddleware"

    def before_agent(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        validate_context(runtime.context, self._descriptions, self._settings.secret_keys)
        return None

    def after_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage):
            return None
        known: dict[str, Any] = dict(state.get(JOBS_KEY) or {})  # type: ignore[call-overload]
        config = get_config()
        jobs: dict[str, Any] = {}
        for call in last.tool_calls:
            args = call["args"]
            if (
                call["name"] != "task"
                or not call["id"]
                or call["id"] in known
                or not isinstance(args.get("description"), str)
                or args.get("subagent_type") not in self._descriptions
            ):
                continue  # the tool call itself answers anything malformed
            job, _ = self._send(
                call["id"], args["description"], args["subagent_type"], runtime.context, config
            )
            jobs[call["id"]] = job
        return {JOBS_KEY: jobs} if jobs else None

    def _delegation(
        self,
        delegation_id: str,
        description: str,
        subagent_type: str,
        context: object,
        config: RunnableConfig,
    ) -> Delegation:
        piece = context_for(subagent_type, context, self._descriptions, self._settings.secret_keys)
        return Delegation(
            id=delegation_id,
            subagent_type=subagent_type,
            description=description,
            context=piece.values,
            secrets=piece.secrets,
            secret_str_keys=piece.secret_str_keys,
            limits=Limits(
                timeout_s=self._settings.delegation_timeout,
                report_max_chars=self._settings.report_max_chars,
                # The caller's limit, not LangGraph's default of 25, bounds the subagent too.
                recursion_limit=int(config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT),
            ),
            thread_id=_thread_id(config),
        )

    def _send(
        self, tool_call_id: str, description: str, subagent_type: str, context: object, config: RunnableConfig
    ) -> tuple[dict[str, str], Delegation]:
        scope = _thread_id(config) or uuid.uuid4().hex[:12]
        delegation_id = _UNSAFE_ID_CHARS.sub("_", f"{scope}:{tool_call_id}")[:200]
        delegation = self._delegation(delegation_id, description, subagent_type, context, config)
        try:
            task_id = self._client.send(delegation)
        except CONNECTION_ERRORS as error:
            # This call's tool message reports it; the rest of the turn goes ahead.
            return {
                "delegation_id": delegation_id,
                "send_error": f"could not send the job: {error}",
            }, delegation
        if self._listener is not None:
            self._listener.dispatched(delegation, task_id)
        return {"task_id": task_id, "delegation_id": delegation_id}, delegation

    def _job(
        self, description: str, subagent_type: str, runtime: ToolRuntime
    ) -> tuple[dict[str, str], Delegation]:
        tool_call_id = runtime.tool_call_id or uuid.uuid4().hex
        job = (runtime.state.get(JOBS_KEY) or {}).get(tool_call_id)
        if job is None:  # not sent by after_model, e.g. a tool call injected by other middleware
            return self._send(tool_call_id, description, subagent_type, runtime.context, runtime.config)
        # Rebuilt rather than kept in state: state is checkpointed, and secrets must not be.
        delegation = self._delegation(
            job["delegation_id"], description, subagent_type, runtime.context, runtime.config
        )
        return job, delegation

    def _unknown(self, subagent_type: str) -> str:
        allowed = ", ".join(f"`{name}`" for name in self._descriptions)
        return (
            f"We cannot invoke subagent {subagent_type} because it does not exist, "
            f"the only allowed types are {allowed}"
        )

    def _result(self, report: Report, job: dict[str, str], runtime: ToolRuntime) -> Command[Any]:
        if self._listener is not None and "task_id" in job:
            self._listener.reported(report, job["task_id"])
        message = ToolMessage(
            content=report.as_tool_content(),
            tool_call_id=runtime.tool_call_id,
            name="task",
            artifact=report.model_dump(mode="json"),
            status="success" if report.status == "ok" else "error",
        )
        return Command(update={"messages": [message], JOBS_KEY: {runtime.tool_call_id: None}})

    def _task(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        job, delegation = self._job(description, subagent_type, runtime)
        if "send_error" in job:
            return self._result(Report.failure(delegation, "error", job["send_error"]), job, runtime)
        return self._result(self._client.wait(job["task_id"], delegation), job, runtime)

    async def _atask(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        job, delegation = self._job(description, subagent_type, runtime)
        if "send_error" in job:
            return self._result(Report.failure(delegation, "error", job["send_error"]), job, runtime)
        return self._result(await self._client.await_report(job["task_id"], delegation), job, runtime)


def _thread_id(config: RunnableConfig) -> str | None:
    thread_id = (config.get("configurable") or {}).get("thread_id")
    return str(thread_id) if thread_id is not None else None
