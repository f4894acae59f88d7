"""Run one delegation: fresh context, namespaced runtime context, enforced limits, and always a
`Report`, whatever the subagent does."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from deepagents.backends.protocol import BackendProtocol
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt, StreamMode
from pydantic import ValidationError

from shared.budgets import Accounts, BudgetExhaustedError
from shared.context import rebuild_context, redact
from shared.errors import error_text, scrubbed_traceback
from shared.files import recording_writes, using_run
from shared.files.layout import using_store_namespaces
from shared.files.workspace import DEFAULT_RUN
from shared.guarded_model import CallScope, call_scope
from shared.progress import RELAYED_NODES, ProgressPublisher
from shared.rate_limiter import CapacityTimeoutError
from shared.schemas import Delegation, FailureStatus, PendingApproval, ProviderRetry, Report, TokenUsage
from shared.secrets import SecretBox
from shared.timing import timing
from workers.conversations import Conversations
from workers.event_loop import LoopStalledError, ProcessLoop
from workers.reporting import cap_summary, final_text
from workers.stepwise import DeadlinePassedError, OnStop, Steps, run_stepwise
from workers.subagents import Subagent, SubagentCache
from workers.tracing import ParentWatcher, filed_under_caller

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """Where and how often this job has run, as Celery tells the task."""

    worker: str
    number: int


def parse_delegation(payload: object, box: SecretBox) -> Delegation:
    try:
        return Delegation.model_validate(payload).opened(box)
    except ValidationError as error:
        # The payload may hold secrets, so name what is wrong but never echo values.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"rejected a malformed delegation: {problems}") from None


class _StoppedError(Exception):
    """The run was cancelled from outside: its lease was lost or the worker is stopping."""


# Every delegation of this process runs on its one loop (see `workers.event_loop` for why).
_LOOP = ProcessLoop()


class PauseGoneError(LookupError):
    """The answer came for a paused subagent whose checkpoint is no longer kept."""


def _given_messages(delegation: Delegation, conversations: Conversations | None) -> list[BaseMessage]:
    """Fresh context: the description is all the subagent learns of its parent's conversation.
    An async task's follow-up goes on from the run it continues (`workers.conversations`)."""
    if delegation.conversation is None:
        return [HumanMessage(content=delegation.description)]
    if conversations is None:
        raise RuntimeError("this worker keeps no conversations of async tasks")
    earlier = (
        conversations.load(delegation.conversation, delegation.continues)
        if delegation.continues is not None
        else []
    )
    asked = [*delegation.unanswered, delegation.description]
    return [*earlier, *(HumanMessage(content=text) for text in asked)]


@dataclass(frozen=True)
class Outlets:
    """Where a run reports besides its `Report`: each step as it happens, for a caller that
    watches, and an async task's messages, for its follow-ups."""

    progress: ProgressPublisher | None = None
    conversations: Conversations | None = None
    trace_parents: ParentWatcher | None = None
    accounts: Accounts | None = None
    """Where the budgets of delegations are kept (`shared.budgets`)."""


def run_metadata(delegation: Delegation, attempt: Attempt) -> dict[str, Any]:
    """The caller's metadata and taskforce's own, on every run of the subagent; `thread_id` is
    the caller's, so LangSmith shows the subagent in the caller's thread, as in process."""
    own = {
        "ls_agent_type": "subagent",
        "taskforce_delegation_id": delegation.id,
        "taskforce_attempt": attempt.number,
        "taskforce_worker": attempt.worker,
    }
    thread = {"thread_id": delegation.thread_id} if delegation.thread_id is not None else {}
    return {**delegation.caller.metadata, **thread, **own}


@dataclass(frozen=True)
class _Call:
    """One run of a subagent's graph, ready to start: what it is given, and how."""

    subagent: Subagent
    given: dict[str, Any] | Command[Any]
    config: RunnableConfig
    context: Any


def _prepared(subagent: Subagent, delegation: Delegation, attempt: Attempt, outlets: Outlets) -> _Call:
    """Everything before the graph runs, the Redis round trips included."""
    context = rebuild_context(
        delegation.context, delegation.secrets, delegation.secret_str_keys, delegation.context_type
    )
    config: RunnableConfig = {
        "recursion_limit": delegation.limits.recursion_limit,
        "run_name": delegation.subagent_type,
        "tags": list(delegation.caller.tags),
        "metadata": run_metadata(delegation, attempt),
    }
    given: dict[str, Any] | Command[Any] = {"messages": _given_messages(delegation, outlets.conversations)}
    paused_runs = subagent.paused_runs
    if paused_runs is not None and delegation.conversation is not None:
        raise ValueError(
            f"subagent {delegation.subagent_type!r} may pause for approval, "
            "which an async task cannot be answered for yet"
        )
    if paused_runs is not None:
        # A paused subagent's thread is the delegation that first ran it.
        thread_id = delegation.resumes or delegation.id
        config["configurable"] = {"thread_id": thread_id}
        if delegation.resumes is None:
            paused_runs.delete_thread(thread_id)  # another attempt starts afresh
        elif paused_runs.get_tuple(config) is None:
            raise PauseGoneError(f"the paused run of delegation {thread_id} is gone; delegate again")
        else:
            given = Command(resume=delegation.resume)
    elif delegation.resumes is not None:
        raise PauseGoneError(f"subagent {delegation.subagent_type!r} never pauses: nothing to resume")
    return _Call(subagent, given, config, context)


def _settle(call: _Call, delegation: Delegation, outlets: Outlets, result: dict[str, Any]) -> None:
    """Everything after the graph ran: a finished pause forgotten, an async task's messages kept."""
    if call.subagent.paused_runs is not None and not result.get("__interrupt__"):
        call.subagent.paused_runs.delete_thread(delegation.resumes or delegation.id)
    if delegation.conversation is not None and outlets.conversations is not None:
        outlets.conversations.save(
            delegation.conversation, delegation.id, result.get("messages", []), delegation.secret_values()
        )


class _Stream:
    """What a run's stream says: its last state, the interrupts it stopped at, and the messages
    of each step a watcher is shown."""

    MODES: ClassVar[list[StreamMode]] = ["updates", "values"]

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        self._interrupts: list[Interrupt] = []

    def take(self, mode: str, chunk: Any) -> list[tuple[str, list[BaseMessage]]]:
        """The step's messages to relay, by node."""
        if mode == "values":
            self._state = chunk
            return []
        relayed = []
        for node, update in chunk.items():
            if node == "__interrupt__":
                self._interrupts.extend(update)
            elif node in RELAYED_NODES and isinstance(update, dict) and update.get("messages"):
                relayed.append((node, update["messages"]))
        return relayed

    def result(self) -> dict[str, Any]:
        """What `invoke` returns: the last state, with the interrupts it stopped at."""
        return {**self._state, "__interrupt__": self._interrupts} if self._interrupts else self._state


def _run_steps(call: _Call, delegation: Delegation, outlets: Outlets, steps: Steps) -> dict[str, Any]:
    """A sync subagent's whole run, on its own thread (`workers.stepwise`), checked after each step."""
    stream = _Stream()
    with filed_under_caller(delegation, outlets.trace_parents):
        for mode, chunk in call.subagent.graph.stream(
            call.given, call.config, context=call.context, stream_mode=_Stream.MODES
        ):
            for node, messages in stream.take(mode, chunk):
                if outlets.progress is not None:
                    outlets.progress.publish(node, messages)
            steps.check()
    result = stream.result()
    _settle(call, delegation, outlets, result)
    return result


async def _invoke(call: _Call, delegation: Delegation, outlets: Outlets) -> dict[str, Any]:
    graph = call.subagent.graph
    with filed_under_caller(delegation, outlets.trace_parents):
        if outlets.progress is None:
            result: dict[str, Any] = await graph.ainvoke(call.given, call.config, context=call.context)
        else:
            stream = _Stream()
            async for mode, chunk in graph.astream(
                call.given, call.config, context=call.context, stream_mode=_Stream.MODES
            ):
                for node, messages in stream.take(mode, chunk):
                    await asyncio.to_thread(outlets.progress.publish, node, messages)
            result = stream.result()
    if call.subagent.paused_runs is not None or delegation.conversation is not None:
        # Redis round trips go to the loop's executor: the loop is every delegation's of the process.
        await asyncio.to_thread(_settle, call, delegation, outlets, result)
    return result


def _pending_approvals(interrupts: list[Interrupt], secrets: list[str]) -> tuple[PendingApproval, ...]:
    """What the human is asked, as JSON, without the run's secret values (a tool call's
    arguments may hold one the model copied)."""
    try:
        return tuple(
            PendingApproval(id=found.id, value=json.loads(redact(json.dumps(found.value), secrets)))
            for found in interrupts
        )
    except (TypeError, ValueError):
        raise ValueError("the subagent paused with an interrupt value that is not JSON") from None


async def _invoke_by_deadline(
    call: _Call, delegation: Delegation, outlets: Outlets, scope: CallScope
) -> dict[str, Any]:
    deadline = asyncio.timeout(delegation.limits.timeout_s)
    try:
        async with deadline:
            with call_scope(scope):
                return await _invoke(call, delegation, outlets)
    except TimeoutError:
        if deadline.expired():
            raise DeadlinePassedError from None
        raise


def _run_subagent(
    subagents: SubagentCache,
    delegation: Delegation,
    attempt: Attempt,
    on_stop: OnStop | None,
    outlets: Outlets,
    *,
    scope: CallScope,
) -> dict[str, Any]:
    """A sync subagent of a main agent run under `invoke` runs step by step on a thread
    (`workers.stepwise`), as deepagents would run it; any other on the process's event loop.
    Either way it is stopped at its deadline or when told to."""
    subagent = subagents.get(delegation.subagent_type, delegation.spec, delegation.inherited)

    def steps_of_the_run(steps: Steps) -> dict[str, Any]:
        with call_scope(scope):
            return _run_steps(_prepared(subagent, delegation, attempt, outlets), delegation, outlets, steps)

    try:
        if subagent.sync and not delegation.caller_async:
            deadline = scope.deadline or time.monotonic() + delegation.limits.timeout_s
            return run_stepwise(steps_of_the_run, deadline, on_stop)
        return _run_on_process_loop(subagent, delegation, attempt, on_stop, outlets, scope=scope)
    except CapacityTimeoutError:  # a call that waits in a thread, where the deadline cannot reach
        raise DeadlinePassedError(
            "its model calls waited for the pool's model limits (TASKFORCE_MODEL_LIMITS) until the deadline"
        ) from None
    except concurrent.futures.CancelledError:
        raise _StoppedError from None


def _run_on_process_loop(
    subagent: Subagent,
    delegation: Delegation,
    attempt: Attempt,
    on_stop: OnStop | None,
    outlets: Outlets,
    *,
    scope: CallScope,
) -> dict[str, Any]:
    """The waiting thread gives up a little after the deadline in case the loop itself is
    blocked, so that its Celery slot and the caller are never held longer than that."""
    call = _prepared(subagent, delegation, attempt, outlets)

    def started(task: asyncio.Task[Any]) -> None:
        if on_stop is not None:
            on_stop(lambda: task.get_loop().call_soon_threadsafe(task.cancel))

    return _LOOP.run(
        _invoke_by_deadline(call, delegation, outlets, scope),
        on_start=started,
        wait_s=timing(delegation.limits).soft_limit_s,
    )


def _how_it_ended(ended: Exception, delegation: Delegation) -> tuple[FailureStatus, str]:
    """The report of a run that ended early, but as planned: stopped, late, or out of budget."""
    if isinstance(ended, _StoppedError):
        return "cancelled", "the run was stopped on this worker"
    if isinstance(ended, BudgetExhaustedError):
        return "budget_exhausted", str(ended)
    return "timeout", (
        f"no report after {delegation.limits.timeout_s:g} s; "
        f"{str(ended) or 'the delegation was given up at its deadline'}"
    )


def run_delegation(
    delegation: Delegation,
    subagents: SubagentCache,
    backend: BackendProtocol,
    attempt: Attempt,
    *,
    on_stop: OnStop | None = None,
    progress: Callable[[Delegation], ProgressPublisher] | None = None,
    conversations: Conversations | None = None,
    trace_parents: ParentWatcher | None = None,
    accounts: Accounts | None = None,
) -> Report:
    """`on_stop` receives, as the run starts, what stops it from any thread, for whoever may
    have to (a lease lost, the worker leaving);
    `progress` opens the stream a delegation that asks for its progress publishes to;
    `conversations` keeps async tasks' messages between their runs; `trace_parents` files
    the subagent's LangSmith runs under its caller's `task` run (`workers.tracing`); `accounts`
    keeps the budgets the delegation spends from."""
    outlets = Outlets(
        progress=progress(delegation) if progress is not None and delegation.progress else None,
        conversations=conversations,
        trace_parents=trace_parents,
        accounts=accounts,
    )
    # The main agent's run: its workspace is where this subagent's files and report go.
    with using_run(delegation.thread_id or DEFAULT_RUN), using_store_namespaces(delegation.store_namespaces):
        return _run_in_workspace(delegation, subagents, backend, attempt, on_stop=on_stop, outlets=outlets)


def _run_in_workspace(
    delegation: Delegation,
    subagents: SubagentCache,
    backend: BackendProtocol,
    attempt: Attempt,
    *,
    on_stop: OnStop | None,
    outlets: Outlets,
) -> Report:
    started = time.monotonic()
    fields: dict[str, Any] = {"worker": attempt.worker, "attempts": attempt.number}
    secrets = delegation.secret_values()
    written: list[str] = []
    scope = CallScope(
        deadline=started + delegation.limits.timeout_s,
        subagent=delegation.subagent_type,
        subagent_limits=subagents.model_limits(delegation.subagent_type),
        on_wait=outlets.progress.waiting if outlets.progress is not None else None,
        budgets=delegation.budgets,
        accounts=outlets.accounts,
    )

    def model_calls() -> dict[str, Any]:
        """What the model calls waited and retried, whichever way the run ended."""
        retries = tuple(
            ProviderRetry(model=model, status=status, count=count)
            for (model, status), count in sorted(scope.retries.items())
        )
        return {"model_wait_s": dict(scope.waited_s), "provider_retries": retries}

    def failed(status: FailureStatus, message: str) -> Report:
        return Report.failure(
            delegation,
            status,
            message,
            duration_s=time.monotonic() - started,
            artifacts=tuple(written),
            **model_calls(),
            **fields,
        )

    # Every way out of here is a report: a delegation whose worker raised past this point would
    # keep its lease renewed and its caller waiting until the attempt's budget ran out.
    try:
        if outlets.accounts is not None and delegation.budgets:
            outlets.accounts.require_unspent(
                delegation.budgets
            )  # a new delegation of a spent run never starts
        with recording_writes() as written:
            result = _run_subagent(subagents, delegation, attempt, on_stop, outlets, scope=scope)
        approvals = _pending_approvals(result.get("__interrupt__") or [], secrets)
        by_model = TokenUsage.by_model(result.get("messages", []))
        common: dict[str, Any] = {
            "delegation_id": delegation.id,
            "subagent_type": delegation.subagent_type,
            "artifacts": tuple(written),
            "usage": sum(by_model.values(), TokenUsage()),
            "usage_by_model": by_model,
            "duration_s": time.monotonic() - started,
            **model_calls(),
            **fields,
        }
        if approvals:
            summary = f"waiting for a human to answer {len(approvals)} interrupt(s)"
            return Report(status="interrupted", summary=summary, interrupts=approvals, **common)
        # Outside the recording: the full report is not one of the subagent's own files.
        summary, full_path = cap_summary(redact(final_text(result), secrets), delegation, backend)
        return Report(status="ok", summary=summary, full_report_path=full_path, **common)
    except (_StoppedError, DeadlinePassedError, BudgetExhaustedError) as ended:
        return failed(*_how_it_ended(ended, delegation))
    except LoopStalledError:
        logger.error(
            "delegation %s: this worker's event loop was blocked past the deadline; "
            "an async tool or model client that blocks instead of awaiting stalls every "
            "delegation of the process",
            delegation.id,
        )
        return failed(
            "timeout",
            f"no report after {delegation.limits.timeout_s:g} s; the worker's event loop was "
            "blocked (an async tool that blocks instead of awaiting?)",
        )
    except Exception as error:  # any failure of one subagent becomes its report, never a crash
        logger.warning("delegation %s failed:\n%s", delegation.id, scrubbed_traceback(error, secrets))
        return failed("error", error_text(error, secrets))
