"""The `task` tool, sent over Celery: a stand-in for deepagents' `SubAgentMiddleware`.

It carries the same name, so `create_deep_agent` puts it where its own would go, and the same
tool name, schema and description format, so models and prompts see no difference.

Every delegation of a model turn is sent the moment the model emits it (in `after_model`),
so all of them run on the pool at once; the tool calls afterwards only wait for their reports.
LangGraph runs a handful of tool calls at a time, and without this the pool would never see
more than that many delegations. A call is sent early only if the tool would accept it (the
same schema validation) and no reviewer edited it. Each delegation id is derived from the
thread, the tool call and its arguments, so the tool call and a resumed thread find the job
already sent, and a call whose arguments changed sends the one it really means (and cancels
the stale one). Handles live in private graph state until the report is in the checkpointed
messages; then the delegation's record is collected from Redis.

A subagent that pauses for human approval reports `interrupted` with its questions; the `task`
call then raises a LangGraph interrupt with each question as deepagents' in-process subagent
would, and the answer goes out as a delegation of its own that resumes the paused subagent on
any worker (`<id>:r<n>`, so a replayed call finds it already sent).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple, NotRequired, Protocol, TypedDict, cast

from deepagents.middleware.subagents import TASK_TOOL_DESCRIPTION, TaskToolSchema
from langchain.agents import AgentState
from langchain.agents.middleware.human_in_the_loop import _EDITED_TOOL_CALLS_KEY
from langchain.agents.middleware.types import AgentMiddleware, PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from pydantic import ValidationError

from orchestrator.client import CONNECTION_ERRORS, DelegationClient
from shared.context import context_for, validate_context
from shared.schemas import Delegation, Inherited, Report
from shared.secrets import SecretBox

JOBS_KEY = "taskforce_jobs"
SCOPE_KEY = "taskforce_scope"
DEFAULT_RECURSION_LIMIT = 1000
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")


class JobHandle(TypedDict):
    """What graph state keeps of one delegation (never its context: state is checkpointed)."""

    delegation_id: str
    send_error: NotRequired[str]
    answered: NotRequired[bool]
    resumed: NotRequired[list[str]]
    """The delegations that answered the subagent's interrupts, collected with it."""


def _merge_jobs(
    current: dict[str, JobHandle] | None, update: dict[str, JobHandle | None] | None
) -> dict[str, JobHandle]:
    """Handles by tool call id; `None` drops a handle whose delegation has been collected."""
    merged = {**(current or {}), **(update or {})}
    return {key: value for key, value in merged.items() if value is not None}


class DelegationState(AgentState[Any]):
    taskforce_jobs: Annotated[NotRequired[dict[str, JobHandle]], PrivateStateAttr, _merge_jobs]
    # What delegation ids are scoped by when the run has no thread id: without it, two runs
    # whose models reuse tool call ids would share delegations.
    taskforce_scope: Annotated[NotRequired[str], PrivateStateAttr]


class _Call(NamedTuple):
    tool_call_id: str
    description: str
    subagent_type: str


class DelegationListener(Protocol):
    """Told about every delegation as it goes out and as its report comes back."""

    def dispatched(self, delegation: Delegation) -> None: ...

    def reported(self, report: Report) -> None: ...


class CeleryDelegationMiddleware(AgentMiddleware[DelegationState, Any, Any]):
    state_schema = DelegationState

    def __init__(
        self,
        client: DelegationClient,
        subagents: Sequence[tuple[str, str]],
        *,
        listener: DelegationListener | None = None,
        queues: Mapping[str, str] | None = None,
        digests: Mapping[str, dict[str, str]] | None = None,
        inherited: Mapping[str, Inherited] | None = None,
    ) -> None:
        """`queues` routes a subagent type to a queue other than its own name; `digests` are
        its spec's, which workers check theirs against; `inherited` what it takes from the main
        agent (`orchestrator.parity`)."""
        super().__init__()
        self._client = client
        self._settings = client.settings
        self._descriptions = dict(subagents)
        self._queues = dict(queues or {})
        self._digests = dict(digests or {})
        self._inherited = dict(inherited or {})
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
        if validate_context(runtime.context, self._descriptions, self._settings.secret_keys):
            SecretBox(self._settings.secrets_key).require_key()
        if state.get(SCOPE_KEY) or _thread_id(get_config()):
            return None
        return {SCOPE_KEY: uuid.uuid4().hex[:12]}

    def before_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self._collect(state)

    def after_agent(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self._collect(state)

    def _collect(self, state: DelegationState) -> dict[str, Any] | None:
        """Reports already in the messages (and so in any checkpoint) need no record in Redis."""
        answered = {call: job for call, job in _jobs(state).items() if job.get("answered")}
        if not answered:
            return None
        self._client.collect(
            delegation_id
            for job in answered.values()
            for delegation_id in [job["delegation_id"], *job.get("resumed", [])]
        )
        return {JOBS_KEY: dict.fromkeys(answered)}

    def after_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        last = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        if last is None:
            return None
        known = _jobs(state)
        answered = {m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)}
        # A call a reviewer edited keeps the model's arguments in the message and runs with the
        # reviewer's: only the tool call itself knows what to send.
        edited = cast(dict[str, Any], state).get(_EDITED_TOOL_CALLS_KEY) or {}
        config = get_config()
        jobs: dict[str, JobHandle] = {}
        for call in last.tool_calls:
            call_id = call["id"]
            if (
                call["name"] != "task"
                or not call_id
                or call_id in known
                or call_id in answered
                or call_id in edited
            ):
                continue
            try:
                args = TaskToolSchema.model_validate(call["args"])
            except ValidationError:
                continue  # the tool call itself answers it, as deepagents' would
            if args.subagent_type not in self._descriptions:
                continue
            call_args = _Call(call_id, args.description, args.subagent_type)
            delegation = self._delegation(call_args, runtime.context, config, state)
            jobs[call_id] = self._send(delegation)
        return {JOBS_KEY: jobs} if jobs else None

    async def aafter_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        # Sending may wait on Redis (and retries through an outage): not on the event loop.
        return await asyncio.to_thread(self.after_model, state, runtime)

    def _delegation(self, call: _Call, context: object, config: RunnableConfig, state: Any) -> Delegation:
        tool_call_id, description, subagent_type = call
        piece = context_for(subagent_type, context, self._descriptions, self._settings.secret_keys)
        thread_id = _thread_id(config)
        scope = thread_id or state.get(SCOPE_KEY) or uuid.uuid4().hex[:12]
        recursion_limit = int(config.get("recursion_limit") or DEFAULT_RECURSION_LIMIT)
        return Delegation(
            id=_delegation_id(scope, tool_call_id, subagent_type, description),
            subagent_type=subagent_type,
            description=description,
            context=piece.values,
            secrets=piece.secrets,
            secret_str_keys=piece.secret_str_keys,
            context_type=piece.type_path,
            # The caller's limit, not LangGraph's default of 25, bounds the subagent too.
            limits=self._settings.limits(recursion_limit),
            thread_id=thread_id,
            queue=self._queues.get(subagent_type),
            spec=self._digests.get(subagent_type, {}),
            inherited=self._inherited.get(subagent_type, Inherited()),
        )

    def _send(self, delegation: Delegation, *, notify: bool = True) -> JobHandle:
        try:
            self._client.send(delegation)
        except CONNECTION_ERRORS as error:
            # This call's tool message reports it; the rest of the turn goes ahead.
            return {"delegation_id": delegation.id, "send_error": f"could not send the job: {error}"}
        if notify and self._listener is not None:
            self._listener.dispatched(delegation)
        return {"delegation_id": delegation.id}

    def _prepare(
        self, description: str, subagent_type: str, runtime: ToolRuntime
    ) -> tuple[Delegation, JobHandle]:
        tool_call_id = runtime.tool_call_id or uuid.uuid4().hex
        call = _Call(tool_call_id, description, subagent_type)
        delegation = self._delegation(call, runtime.context, runtime.config, runtime.state)
        job = _jobs(runtime.state).get(tool_call_id)
        if job is not None and job["delegation_id"] == delegation.id:
            return delegation, job
        if job is not None:  # the call was edited after it was sent: the old job is not wanted
            self._client.cancel([job["delegation_id"]])
        return delegation, self._send(delegation)

    def _unknown(self, subagent_type: str) -> str:
        allowed = ", ".join(f"`{name}`" for name in self._descriptions)
        return (
            f"We cannot invoke subagent {subagent_type} because it does not exist, "
            f"the only allowed types are {allowed}"
        )

    def _result(
        self, report: Report, job: JobHandle, runtime: ToolRuntime, resumed: Sequence[str] = ()
    ) -> Command[Any]:
        if self._listener is not None and "send_error" not in job:
            # The listener knows the delegation by the id it was dispatched with.
            self._listener.reported(report.model_copy(update={"delegation_id": job["delegation_id"]}))
        message = ToolMessage(
            content=report.as_tool_content(),
            tool_call_id=runtime.tool_call_id,
            name="task",
            artifact=report.model_dump(mode="json"),
            status="success" if report.status == "ok" else "error",
        )
        handle: JobHandle = {"delegation_id": job["delegation_id"], "answered": True}
        if resumed:
            handle["resumed"] = list(resumed)
        return Command(update={"messages": [message], JOBS_KEY: {runtime.tool_call_id: handle}})

    def _resume(self, paused: Delegation, report: Report, resumed: list[str]) -> Delegation | Report:
        """Ask the human each of the paused subagent's questions (a LangGraph interrupt apiece,
        which ends this run until it is resumed), then send the answers to resume it: the
        delegation to wait for, or the report of why it could not be sent."""
        answers = {pending.id: interrupt(pending.value) for pending in report.interrupts}
        step = {"id": f"{paused.id}:r{len(resumed)}", "resumes": paused.id, "resume": answers}
        follow_up = Delegation.model_validate({**paused.model_dump(), **step})
        resumed.append(follow_up.id)
        sent = self._send(follow_up, notify=False)
        return Report.failure(follow_up, "error", sent["send_error"]) if "send_error" in sent else follow_up

    def _task(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        delegation, job = self._prepare(description, subagent_type, runtime)
        if "send_error" in job:
            return self._result(Report.failure(delegation, "error", job["send_error"]), job, runtime)
        report = self._client.wait(delegation)
        resumed: list[str] = []
        while report.status == "interrupted":
            follow_up = self._resume(delegation, report, resumed)
            report = follow_up if isinstance(follow_up, Report) else self._client.wait(follow_up)
        return self._result(report, job, runtime, resumed)

    async def _atask(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        delegation, job = await asyncio.to_thread(self._prepare, description, subagent_type, runtime)
        if "send_error" in job:
            return self._result(Report.failure(delegation, "error", job["send_error"]), job, runtime)
        report = await self._client.await_report(delegation)
        resumed: list[str] = []
        while report.status == "interrupted":
            # Sending may wait on Redis; `interrupt` finds its run in the copied context.
            follow_up = await asyncio.to_thread(self._resume, delegation, report, resumed)
            if isinstance(follow_up, Delegation):
                follow_up = await self._client.await_report(follow_up)
            report = follow_up
        return self._result(report, job, runtime, resumed)


def _jobs(state: Any) -> dict[str, JobHandle]:
    jobs: dict[str, JobHandle] = state.get(JOBS_KEY) or {}
    return jobs


def _thread_id(config: RunnableConfig) -> str | None:
    thread_id = (config.get("configurable") or {}).get("thread_id")
    return str(thread_id) if thread_id is not None else None


def _delegation_id(scope: str, tool_call_id: str, subagent_type: str, description: str) -> str:
    """The same call in the same thread is the same delegation; an edited one is not."""
    digest = hashlib.sha256(f"{subagent_type}\0{description}".encode()).hexdigest()[:8]
    # Short enough to leave room for the `:r<n>` of the delegations that resume it.
    return _UNSAFE_ID_CHARS.sub("_", f"{scope}:{tool_call_id}")[:180] + f":{digest}"
