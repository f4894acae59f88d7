"""Send delegations to the worker pools and wait for their reports.

Waiting polls the result backend instead of using `AsyncResult.get()`: Celery's Redis result
consumer is not safe to share between the threads LangGraph runs tool calls on, while a plain
`GET` on a pooled connection is. One small state machine serves both the sync and async waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, states
from kombu.exceptions import OperationalError
from pydantic import ValidationError
from redis.exceptions import RedisError

from shared.celery_app import RUN_DELEGATION, delegation_queue, queue_for
from shared.context import redact
from shared.schemas import Delegation, Report
from shared.settings import Settings

# The worker reports its own timeout; this is how much longer the orchestrator waits for that
# report before it gives up on the job.
REPORT_GRACE_S = 30.0
# How long Redis may stay unreachable while we wait before the delegation counts as lost; a
# restart or failover is shorter than this and costs nothing but a delay.
REDIS_OUTAGE_S = 60.0
_FIRST_POLL_S = 0.02
_MAX_POLL_S = 0.25
# What a lost connection to Redis looks like from redis-py, kombu and the socket layer.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisError, OperationalError, OSError)


@dataclass
class _Wait:
    """Decides, poll by poll, whether a job has produced its report or run out of time."""

    delegation: Delegation
    queue_timeout: float
    queue: str
    sent_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    unreachable_since: float | None = None
    interval: float = _FIRST_POLL_S

    def step(self, meta: dict[str, Any] | Exception) -> Report | None:
        """One poll's outcome (the task's metadata, or the error that kept us from reading
        it) to a report, or None to poll again."""
        now = time.monotonic()
        self.interval = min(self.interval * 1.5, _MAX_POLL_S)
        if isinstance(meta, Exception):
            self.unreachable_since = self.unreachable_since or now
            if now - self.unreachable_since > REDIS_OUTAGE_S:
                return self._failure("error", f"lost contact with Redis for {REDIS_OUTAGE_S:g} s: {meta}")
            return None
        self.unreachable_since = None
        status = meta.get("status", states.PENDING)
        if status == states.SUCCESS:
            return self._parse(meta.get("result"))
        if status in states.EXCEPTION_STATES:
            error = meta.get("result")
            text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
            return self._failure("error", f"the job failed on the worker: {text}")
        if status == states.STARTED and self.started_at is None:
            self.started_at = now
        return self._overdue(now)

    def _overdue(self, now: float) -> Report | None:
        if self.started_at is None:
            if now - self.sent_at <= self.queue_timeout:
                return None
            return self._failure(
                "timeout",
                f"no worker took the job within {self.queue_timeout:g} s; "
                f"are workers running and consuming queue {self.queue!r}?",
            )
        budget = self.delegation.limits.timeout_s + REPORT_GRACE_S
        if now - self.started_at <= budget:
            return None
        return self._failure("timeout", f"the worker sent no report within {budget:g} s")

    def _parse(self, result: object) -> Report:
        try:
            return Report.model_validate(result)
        except ValidationError as error:
            return self._failure("error", f"the worker sent a report this orchestrator cannot read: {error}")

    def _failure(self, status: Any, message: str) -> Report:
        return Report.failure(self.delegation, status, redact(message, self.delegation.secret_values()))


class DelegationClient:
    """The orchestrator's handle on the worker pools."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def send(self, delegation: Delegation) -> str:
        task_id = uuid.uuid4().hex
        redacted = delegation.redacted()
        self.app.send_task(
            RUN_DELEGATION,
            args=[delegation.to_wire()],
            task_id=task_id,
            queue=delegation_queue(self.settings, delegation.subagent_type),
            # What Flower and worker logs display: the message minus secret values.
            argsrepr=repr([redacted]),
            kwargsrepr="{}",
            soft_time_limit=delegation.limits.timeout_s + REPORT_GRACE_S / 2,
            time_limit=delegation.limits.timeout_s + REPORT_GRACE_S,
        )
        return task_id

    def states(self, task_ids: Iterable[str]) -> dict[str, str]:
        return {task_id: str(self._meta(task_id).get("status", states.PENDING)) for task_id in task_ids}

    def wait(self, task_id: str, delegation: Delegation) -> Report:
        wait = self._new_wait(delegation)
        while (report := wait.step(self._poll(task_id))) is None:
            time.sleep(wait.interval)
        return self._finish(task_id, report)

    async def await_report(self, task_id: str, delegation: Delegation) -> Report:
        wait = self._new_wait(delegation)
        while (report := wait.step(await asyncio.to_thread(self._poll, task_id))) is None:
            await asyncio.sleep(wait.interval)
        return self._finish(task_id, report)

    def _poll(self, task_id: str) -> dict[str, Any] | Exception:
        try:
            return self._meta(task_id)
        except CONNECTION_ERRORS as error:
            return error

    def _new_wait(self, delegation: Delegation) -> _Wait:
        return _Wait(
            delegation, self.settings.queue_timeout, queue_for(self.settings, delegation.subagent_type)
        )

    def _meta(self, task_id: str) -> dict[str, Any]:
        meta: dict[str, Any] = self.app.backend.get_task_meta(task_id)
        return meta

    def _finish(self, task_id: str, report: Report) -> Report:
        # Best effort: the report is what matters, and Redis may be the thing that failed.
        with contextlib.suppress(*CONNECTION_ERRORS):
            if report.status == "timeout":
                self.app.control.revoke(task_id)
            # The report now lives in the parent's messages; keeping it in Redis only piles up.
            self.app.backend.forget(task_id)
        return report
