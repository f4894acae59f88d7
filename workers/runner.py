"""Run one delegation: fresh context, namespaced runtime context, enforced limits, and always a
`Report`, whatever the subagent does."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from deepagents.backends.protocol import BackendProtocol
from langchain_core.messages import HumanMessage
from pydantic import ValidationError

from shared.context import rebuild_context, redact
from shared.files import aclose_loop_clients, recording_writes, using_run
from shared.files.workspace import DEFAULT_RUN
from shared.schemas import Delegation, Report
from workers.reporting import cap_summary, final_text, token_usage
from workers.subagents import SubagentCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """Where and how often this job has run, as Celery tells the task."""

    worker: str
    number: int


def parse_delegation(payload: object) -> Delegation:
    try:
        return Delegation.model_validate(payload)
    except ValidationError as error:
        # The payload may hold secrets, so name what is wrong but never echo values.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"rejected a malformed delegation: {problems}") from None


class _DeadlinePassedError(Exception):
    """Our own deadline fired, as opposed to a `TimeoutError` raised by a tool or a client."""


async def _invoke(subagents: SubagentCache, delegation: Delegation) -> dict[str, Any]:
    graph = subagents.get(delegation.subagent_type)
    context = rebuild_context(delegation.context, delegation.secrets, delegation.secret_str_keys)
    result: dict[str, Any] = await graph.ainvoke(
        # Fresh context: the description is all the subagent learns of its parent's conversation.
        {"messages": [HumanMessage(content=delegation.description)]},
        {"recursion_limit": delegation.limits.recursion_limit, "run_name": delegation.subagent_type},
        context=context,
    )
    return result


async def _invoke_by_deadline(subagents: SubagentCache, delegation: Delegation) -> dict[str, Any]:
    deadline = asyncio.timeout(delegation.limits.timeout_s)
    try:
        async with deadline:
            return await _invoke(subagents, delegation)
    except TimeoutError:
        if deadline.expired():
            raise _DeadlinePassedError from None
        raise


def _run_detached(subagents: SubagentCache, delegation: Delegation) -> dict[str, Any]:
    """Run on a loop of our own whose executor is not waited for at the end: `asyncio.run`
    would wait for a blocking call (a sync model or tool) that the deadline already gave up
    on, holding the worker slot for as long as that call hangs."""
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix=f"delegation-{delegation.subagent_type}")
    loop.set_default_executor(executor)
    try:
        return loop.run_until_complete(_invoke_by_deadline(subagents, delegation))
    finally:
        loop.run_until_complete(aclose_loop_clients())  # their connections belong to this loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        executor.shutdown(wait=False, cancel_futures=True)


def run_delegation(
    delegation: Delegation, subagents: SubagentCache, backend: BackendProtocol, attempt: Attempt
) -> Report:
    # The main agent's run: its workspace is where this subagent's files and report go.
    with using_run(delegation.thread_id or DEFAULT_RUN):
        return _run_in_workspace(delegation, subagents, backend, attempt)


def _run_in_workspace(
    delegation: Delegation, subagents: SubagentCache, backend: BackendProtocol, attempt: Attempt
) -> Report:
    started = time.monotonic()
    fields: dict[str, Any] = {"worker": attempt.worker, "attempts": attempt.number}
    secrets = delegation.secret_values()
    with recording_writes() as written:

        def failed(status: Literal["error", "timeout"], message: str) -> Report:
            return Report.failure(
                delegation,
                status,
                message,
                duration_s=time.monotonic() - started,
                artifacts=tuple(written),
                **fields,
            )

        try:
            result = _run_detached(subagents, delegation)
        except _DeadlinePassedError:
            return failed(
                "timeout",
                f"no report after {delegation.limits.timeout_s:g} s; "
                "the delegation was given up at its deadline",
            )
        except Exception as error:  # any failure of one subagent becomes its report, never a crash
            logger.warning("delegation %s failed: %s", delegation.id, type(error).__name__)
            return failed("error", redact(f"{type(error).__name__}: {error}", secrets))
    # Outside the recording: the full report is not one of the subagent's own files.
    summary, full_path = cap_summary(redact(final_text(result), secrets), delegation, backend)
    return Report(
        delegation_id=delegation.id,
        subagent_type=delegation.subagent_type,
        status="ok",
        summary=summary,
        full_report_path=full_path,
        artifacts=tuple(written),
        usage=token_usage(result.get("messages", [])),
        duration_s=time.monotonic() - started,
        **fields,
    )
