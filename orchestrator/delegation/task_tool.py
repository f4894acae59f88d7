"""The `task` tool, sent over Celery: a stand-in for deepagents' `SubAgentMiddleware`.

It carries the same name, so `create_deep_agent` puts it where its own would go, and the same
tool name, schema and description format, so models and prompts see no difference.

Every delegation of a model turn is sent the moment the model emits it (in `after_model`),
so all of them run on the pool at once; the tool calls afterwards only wait for their reports.
LangGraph runs a handful of tool calls at a time, and without this the pool would never see
more than that many delegations. A call is sent early only if the tool would accept it (the
same schema validation) and no reviewer edited it. Each delegation id is derived from the
thread, the tool call and its arguments, so the tool call and a resumed thread find the delegation
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
import contextlib
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, Protocol, TypedDict, cast

from deepagents.middleware.subagents import TASK_TOOL_DESCRIPTION, TaskToolSchema
from langchain.agents import AgentState
from langchain.agents.middleware.types import AgentMiddleware, PrivateStateAttr
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from pydantic import ValidationError

from orchestrator.delegation.building import STAND_IN_THREAD_ID_KEY, DelegationBuilder, thread_id_of
from orchestrator.delegation.client import DelegationClient
from orchestrator.delegation.stream import areplay, replay, streams_subgraphs
from shared.celery_app import CONNECTION_ERRORS
from shared.compat.langchain import EDITED_TOOL_CALLS_KEY
from shared.context import validate_context
from shared.progress import ProgressReader
from shared.schemas import Delegation, Report
from shared.secrets import SecretBox

HANDLES_KEY = "taskforce_delegations"


class DelegationHandle(TypedDict):
    """What graph state keeps of one delegation (never its context: state is checkpointed)."""

    delegation_id: str
    send_error: NotRequired[str]
    answered: NotRequired[bool]
    resumed: NotRequired[list[str]]
    """The delegations that answered the subagent's interrupts, collected with it."""


def _merge_handles(
    current: dict[str, DelegationHandle] | None, update: dict[str, DelegationHandle | None] | None
) -> dict[str, DelegationHandle]:
    """Handles by tool call id; `None` drops a handle whose delegation has been collected.

    Every `task` call of a turn writes its own handle, so this runs once per call on a dict of
    the whole turn: one C-level copy each, not a rebuilt dict (a turn of 1,000 calls spent about
    0.1 ms a call here)."""
    merged = dict(current or {})
    for key, value in (update or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class DelegationState(AgentState[Any]):
    taskforce_delegations: Annotated[
        NotRequired[dict[str, DelegationHandle]], PrivateStateAttr, _merge_handles
    ]
    # Stands in for the thread id in delegation ids when the run has none: without it, two runs
    # whose models reuse tool call ids would share delegations.
    taskforce_stand_in_thread_id: Annotated[NotRequired[str], PrivateStateAttr]


class DelegationListener(Protocol):
    """Told about every delegation as it goes out and as its report comes back. With a
    listener, workers also publish each delegation's steps (`shared.progress`) to show live."""

    def dispatched(self, delegation: Delegation) -> None: ...

    def reported(self, report: Report) -> None: ...


class CeleryDelegationMiddleware(AgentMiddleware[DelegationState, Any, Any]):
    state_schema = DelegationState

    def __init__(
        self,
        client: DelegationClient,
        builder: DelegationBuilder,
        subagents: Sequence[tuple[str, str]],
        *,
        listener: DelegationListener | None = None,
    ) -> None:
        """`subagents` are the types the `task` tool offers (name, description); `builder`
        knows how to send those and every other type the main agent delegates to."""
        super().__init__()
        self._client = client
        self._settings = client.settings
        self._builder = builder
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
        if not subagents:
            # deepagents offers no `task` tool without synchronous subagents; the middleware still
            # keeps a stand-in thread id and checks the context for the async-task tools.
            self.tools = []

    @property
    def name(self) -> str:
        # deepagents swaps in custom middleware by name: this takes the SubAgentMiddleware slot.
        return "SubAgentMiddleware"

    def before_agent(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        if validate_context(runtime.context, self._builder.names, self._settings.secret_keys):
            SecretBox(self._settings.secrets_key).require_key()
        if state.get(STAND_IN_THREAD_ID_KEY) or thread_id_of(get_config()):
            return None
        return {STAND_IN_THREAD_ID_KEY: uuid.uuid4().hex[:12]}

    def before_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self._collect(state)

    def after_agent(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self._collect(state)

    def _collect(self, state: DelegationState) -> dict[str, Any] | None:
        """Reports already in the messages (and so in any checkpoint) need no record in Redis."""
        answered = {call: handle for call, handle in _handles(state).items() if handle.get("answered")}
        if not answered:
            return None
        self._client.collect(
            delegation_id
            for handle in answered.values()
            for delegation_id in [handle["delegation_id"], *handle.get("resumed", [])]
        )
        return {HANDLES_KEY: dict.fromkeys(answered)}

    def after_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        return self._delegate_turn(state, runtime, caller_async=False)

    async def aafter_model(self, state: DelegationState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        # Sending may wait on Redis (and retries through an outage): not on the event loop.
        return await asyncio.to_thread(self._delegate_turn, state, runtime, caller_async=True)

    def _delegate_turn(
        self, state: DelegationState, runtime: Runtime[Any], *, caller_async: bool
    ) -> dict[str, Any] | None:
        last = next((m for m in reversed(state["messages"]) if isinstance(m, AIMessage)), None)
        if last is None:
            return None
        known = _handles(state)
        answered = {m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)}
        # A call a reviewer edited keeps the model's arguments in the message and runs with the
        # reviewer's: only the tool call itself knows what to send.
        edited = cast(dict[str, Any], state).get(EDITED_TOOL_CALLS_KEY) or {}
        config = get_config()
        delegations: dict[str, Delegation] = {}
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
            delegations[call_id] = self._builder.build(
                call_id,
                args.description,
                args.subagent_type,
                context=runtime.context,
                config=config,
                state=state,
                progress=self._watched(config),
                caller_async=caller_async,
            )
        handles = self._send_all(list(delegations.values()))
        return {HANDLES_KEY: dict(zip(delegations, handles, strict=True))} if handles else None

    def _watched(self, config: RunnableConfig) -> bool:
        """Someone watches the subagents' steps: a caller streaming subgraphs, or a listener."""
        return streams_subgraphs(config) or self._listener is not None

    def _send(self, delegation: Delegation, *, notify: bool = True) -> DelegationHandle:
        (handle,) = self._send_all([delegation], notify=notify)
        return handle

    def _send_all(self, delegations: Sequence[Delegation], *, notify: bool = True) -> list[DelegationHandle]:
        if not delegations:
            return []
        try:
            self._client.send_all(delegations)
        except CONNECTION_ERRORS as error:
            # These calls' tool messages report it; the rest of the run goes ahead.
            failure = f"could not send the delegation: {error}"
            return [{"delegation_id": delegation.id, "send_error": failure} for delegation in delegations]
        if notify and self._listener is not None:
            for delegation in delegations:
                self._listener.dispatched(delegation)
        return [{"delegation_id": delegation.id} for delegation in delegations]

    def _prepare(
        self, description: str, subagent_type: str, runtime: ToolRuntime, *, caller_async: bool
    ) -> tuple[Delegation, DelegationHandle]:
        tool_call_id = runtime.tool_call_id or uuid.uuid4().hex
        delegation = self._builder.build(
            tool_call_id,
            description,
            subagent_type,
            context=runtime.context,
            config=runtime.config,
            state=runtime.state,
            progress=self._watched(runtime.config),
            caller_async=caller_async,
        )
        self._client.file_under_current_run([delegation])
        handle = _handles(runtime.state).get(tool_call_id)
        if handle is not None and handle["delegation_id"] == delegation.id:
            return delegation, handle
        if handle is not None:  # the call was edited after it was sent: the old handle is not wanted
            # Redis unreachable: the record expires instead, and the new send reports the outage.
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._client.cancel([handle["delegation_id"]])
        return delegation, self._send(delegation)

    def _unknown(self, subagent_type: str) -> str:
        allowed = ", ".join(f"`{name}`" for name in self._descriptions)
        return (
            f"We cannot invoke subagent {subagent_type} because it does not exist, "
            f"the only allowed types are {allowed}"
        )

    def _result(
        self, report: Report, handle: DelegationHandle, runtime: ToolRuntime, resumed: Sequence[str] = ()
    ) -> Command[Any]:
        if self._listener is not None and "send_error" not in handle:
            # The listener knows the delegation by the id it was dispatched with.
            self._listener.reported(report.model_copy(update={"delegation_id": handle["delegation_id"]}))
        message = ToolMessage(
            content=report.as_tool_content(),
            tool_call_id=runtime.tool_call_id,
            name="task",
            artifact=report.model_dump(mode="json"),
            status="success" if report.status == "ok" else "error",
        )
        answered: DelegationHandle = {"delegation_id": handle["delegation_id"], "answered": True}
        if resumed:
            answered["resumed"] = list(resumed)
        return Command(update={"messages": [message], HANDLES_KEY: {runtime.tool_call_id: answered}})

    def _progress(self, delegation: Delegation) -> ProgressReader:
        return ProgressReader(self._client.ledger.client, self._settings.queue_prefix, delegation.id)

    def _wait(self, delegation: Delegation, runtime: ToolRuntime) -> Report:
        if streams_subgraphs(runtime.config):
            replay(self._progress(delegation), self._client.send(delegation), delegation.subagent_type)
        return self._client.wait(delegation)

    async def _await(self, delegation: Delegation, runtime: ToolRuntime) -> Report:
        if streams_subgraphs(runtime.config):
            sent = await asyncio.to_thread(self._client.send, delegation)
            await areplay(self._progress(delegation), sent, delegation.subagent_type)
        return await self._client.await_report(delegation)

    def _resume(self, paused: Delegation, report: Report, resumed: list[str]) -> Delegation | Report:
        """Ask the human each of the paused subagent's questions (a LangGraph interrupt apiece,
        which ends this run until it is resumed), then send the answers to resume it: the
        delegation to wait for, or the report of why it could not be sent."""
        answers = {pending.id: interrupt(pending.value) for pending in report.interrupts}
        step = {"id": f"{paused.id}:r{len(resumed)}", "resumes": paused.id, "resume": answers}
        follow_up = Delegation.model_validate({**paused.model_dump(), **step})
        resumed.append(follow_up.id)
        self._client.file_under_current_run([follow_up])
        sent = self._send(follow_up, notify=False)
        return Report.failure(follow_up, "error", sent["send_error"]) if "send_error" in sent else follow_up

    def _task(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        delegation, handle = self._prepare(description, subagent_type, runtime, caller_async=False)
        if "send_error" in handle:
            return self._result(Report.failure(delegation, "error", handle["send_error"]), handle, runtime)
        report = self._wait(delegation, runtime)
        resumed: list[str] = []
        while report.status == "interrupted":
            follow_up = self._resume(delegation, report, resumed)
            report = follow_up if isinstance(follow_up, Report) else self._wait(follow_up, runtime)
        return self._result(report, handle, runtime, resumed)

    async def _atask(self, description: str, subagent_type: str, runtime: ToolRuntime) -> str | Command[Any]:
        if subagent_type not in self._descriptions:
            return self._unknown(subagent_type)
        delegation, handle = await asyncio.to_thread(
            self._prepare, description, subagent_type, runtime, caller_async=True
        )
        if "send_error" in handle:
            return self._result(Report.failure(delegation, "error", handle["send_error"]), handle, runtime)
        report = await self._await(delegation, runtime)
        resumed: list[str] = []
        while report.status == "interrupted":
            # Sending may wait on Redis; `interrupt` finds its run in the copied context.
            follow_up = await asyncio.to_thread(self._resume, delegation, report, resumed)
            if isinstance(follow_up, Delegation):
                follow_up = await self._await(follow_up, runtime)
            report = follow_up
        return self._result(report, handle, runtime, resumed)


def _handles(state: Any) -> dict[str, DelegationHandle]:
    handles: dict[str, DelegationHandle] = state.get(HANDLES_KEY) or {}
    return handles
