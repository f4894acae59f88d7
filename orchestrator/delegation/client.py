"""Send delegations to the worker pools and wait for their reports: the calls waiting, and
what becomes of each.

The parts have rooms of their own: recording and publishing (`publishing`), the cap on
delegations out at once (`slots`), the thread that pops pushed reports (`listener`), and the
checks for what no push can tell (`checks`): a job stuck in its queue, a queue no live worker
consumes, an attempt past its budget. Here a pushed report or a check's verdict resolves the
future of the call waiting for it, sync (`wait`) or async (`await_report`), and every tick
also sweeps leases that lapsed (`shared.sweeper`).

Giving up on a delegation, for whatever reason, cancels it in Redis: its record goes (so a
worker drops its message, or stops its run at the next lease renewal) and its message is taken
out of the queue.

An async task's delegation is started with nobody waiting (`start`): closing the client does
not cancel it, and `peek` reads its report from the record, from any process, applying the
checks the listener makes for waiting calls when it is looked at.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import uuid
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from celery import Celery
from pydantic import ValidationError

from orchestrator.delegation.checks import Checks, overran
from orchestrator.delegation.listener import InboxListener
from orchestrator.delegation.publishing import Publisher
from orchestrator.delegation.slots import Slots
from shared.celery_app import CONNECTION_ERRORS
from shared.context import redact
from shared.ledger import FINAL_STATES, State, open_ledger
from shared.metrics import CALLERS, ProcessCounts
from shared.schemas import Delegation, FailureStatus, Report
from shared.settings import Settings
from shared.sweeper import sweep
from shared.timing import timing
from shared.tracing import leave_parent

logger = logging.getLogger(__name__)


class DetachedError(RuntimeError):
    """The client stopped waiting without cancelling (`DelegationClient.detach`): the
    delegation runs on, and a resumed run re-attaches to it."""


class RunInterruptedError(RuntimeError):
    """The run was interrupted (Ctrl-C, SIGTERM): its delegations were cancelled."""


@dataclass
class _Wait:
    delegation: Delegation
    queue: str
    future: Future[Report] = field(default_factory=Future)
    recorded: bool = False
    """Its record exists: a wait is registered before, so that no pushed report can miss it."""


class DelegationClient:
    """The orchestrator's handle on the worker pools; one per process is plenty."""

    def __init__(self, app: Celery, settings: Settings, max_in_flight: int | None = None) -> None:
        """`max_in_flight` caps the delegations out at once: a further send waits for a report."""
        self.app = app
        self.settings = settings
        self.ledger = open_ledger(settings)
        self._counter = ProcessCounts(self.ledger.client, self.ledger.namespace, CALLERS)
        self._publisher = Publisher(app, settings, self.ledger)
        self.inbox = self.ledger.inbox(uuid.uuid4().hex)
        self._waits: dict[str, _Wait] = {}
        self._sent: set[str] = set()
        self._answered: dict[str, Future[Report]] = {}
        """Reports in before their calls asked for them: a turn's calls wait one after another."""
        self._collectable: list[str] = []
        self.states: dict[str, str] = {}
        """The last state seen of each delegation still waited for (for progress displays)."""
        self._lock = threading.Lock()
        self._slots = Slots(max_in_flight)
        self._detached = False
        self._listener = InboxListener(
            settings,
            self.inbox,
            on_reports=self._deliver,
            on_pass=self._forget_collected,
            on_tick=self._tick,
            on_outage=self._lost_contact,
        )
        # Whatever is still out when the interpreter exits is cancelled, not left to run.
        atexit.register(_close_if_alive, weakref.ref(self))

    # Sending.

    def send(self, delegation: Delegation) -> Future[Report]:
        """Record and publish the delegation, or re-attach to it if its id is already recorded.
        Raises CONNECTION_ERRORS if Redis stays away through the retries."""
        return self.send_all([delegation])[0]

    def file_under_current_run(self, delegations: Sequence[Delegation]) -> None:
        """Called from inside the tool run that asked for these delegations: their subagents'
        runs join its trace (`shared.tracing`). A trace is never worth a failed tool call, so
        an unreachable Redis only costs the nesting."""
        traced = [delegation for delegation in delegations if delegation.caller.traced]
        if not traced:
            return
        ttl_s = max(timing(delegation.limits).outstanding_s for delegation in traced)
        try:
            leave_parent(self.ledger.client, self.settings.queue_prefix, [d.id for d in traced], ttl_s)
        except CONNECTION_ERRORS as error:
            logger.warning(
                "the trace of %d delegation(s) stays apart from its caller's: %s", len(traced), error
            )

    def send_all(self, delegations: Sequence[Delegation]) -> list[Future[Report]]:
        """`send` for each delegation, a model turn's worth at once: their records take one round
        trip to Redis per 500, their messages one per kombu batch (1,000 commands). Under
        `max_in_flight` the delegations that have a free slot go together, the rest as slots
        free up."""
        futures: dict[str, Future[Report]] = {}
        batch: dict[str, Delegation] = {}
        for delegation in delegations:
            with self._lock:
                known = self._waits.get(delegation.id)
                answered = self._answered.pop(delegation.id, None)
            if known is not None:
                futures[delegation.id] = known.future
                continue
            if answered is not None:
                futures[delegation.id] = answered
                continue
            if delegation.id in batch:
                continue
            if not self._take_slot(blocking=not batch):
                futures.update(self._send(list(batch.values())))
                batch = {}
                self._take_slot(blocking=True)
            batch[delegation.id] = delegation
        futures.update(self._send(list(batch.values())))
        return [futures[delegation.id] for delegation in delegations]

    def _send(self, delegations: Sequence[Delegation]) -> dict[str, Future[Report]]:
        """Send delegations that each hold a slot; the slots go back if sending fails."""
        if not delegations:
            return {}
        waits = [_Wait(delegation, self._publisher.queue(delegation)) for delegation in delegations]
        ids = [delegation.id for delegation in delegations]
        try:
            with self._lock:
                if self._detached:
                    raise DetachedError("this client was detached: it sends nothing more")
                self._waits.update(zip(ids, waits, strict=True))
                self._sent.update(ids)
            states = self._publisher.record_and_publish(delegations, reply_to=self.inbox)
            for wait in waits:
                wait.recorded = True
            self._check([wait for wait, state in zip(waits, states, strict=True) if state in FINAL_STATES])
        except BaseException:
            with self._lock:
                for delegation_id in ids:
                    self._waits.pop(delegation_id, None)
            with contextlib.suppress(*CONNECTION_ERRORS):
                self.ledger.forget(ids)
            for _ in ids:
                self._slots.free()
            raise
        self._listener.ensure_running()
        return {wait.delegation.id: wait.future for wait in waits}

    def start(self, delegation: Delegation) -> None:
        """Record and publish the delegation without waiting for it: a background task, which
        outlives this client (closing it, or the interpreter's exit, cancels nothing started
        here) and whose report stays in its record until `result_expires` after it finishes,
        for `peek` to read from any process. Starting an id already recorded does nothing.
        Raises CONNECTION_ERRORS if Redis stays away through the retries."""
        if self._detached:
            raise DetachedError("this client was detached: it sends nothing more")
        self._publisher.record_and_publish([delegation], reply_to="")

    def peek(self, delegation_ids: Sequence[str]) -> dict[str, Report | None]:
        """Without waiting: the report of each delegation that has one, None for one still
        queued or running, and no entry for one with no record (cancelled, collected or
        expired). Raises CONNECTION_ERRORS if Redis stays away through the retries."""
        now_ms, records = self.ledger.snapshot(delegation_ids)
        found: dict[str, Report | None] = {}
        checks = Checks(self.ledger, self.settings)
        for delegation_id, record in records.items():
            if record.state == State.QUEUED:
                found[delegation_id] = checks.give_up_if_stuck(delegation_id, record, now_ms)
                continue
            if record.state not in FINAL_STATES:
                found[delegation_id] = None
                continue
            try:
                found[delegation_id] = Report.model_validate_json(record.report)
            except ValidationError as error:
                found[delegation_id] = Report(
                    delegation_id=delegation_id,
                    subagent_type=record.subagent,
                    status="error",
                    summary=f"the worker sent a report this orchestrator cannot read: {error}",
                )
        return found

    # Waiting.

    def wait(self, delegation: Delegation) -> Report:
        return self.send(delegation).result()

    async def await_report(self, delegation: Delegation) -> Report:
        future = await asyncio.to_thread(self.send, delegation)
        return await asyncio.wrap_future(future)

    # Giving up and tidying up.

    def cancel(self, delegation_ids: Iterable[str]) -> None:
        """Give up on these delegations: durably cancelled, their waits answered `cancelled`.
        Delegations this client does not wait for (sent by `start`, or by another process) are
        cancelled too, from their records; if Redis cannot be reached for those, this raises
        CONNECTION_ERRORS, since nothing else would tell the caller that they still run."""
        ids = set(delegation_ids)
        with self._lock:
            waits = [wait for key, wait in self._waits.items() if key in ids]
            self._forget_sent(ids)
        unwaited = sorted(ids - {wait.delegation.id for wait in waits})
        if unwaited:
            _, records = self.ledger.snapshot(unwaited)
            self.ledger.forget(unwaited)
            by_queue: dict[str, list[str]] = {}
            for delegation_id, record in records.items():
                if record.queue:
                    by_queue.setdefault(record.queue, []).append(delegation_id)
            for queue, queued in by_queue.items():
                self.ledger.purge_queued(queue, queued)
        self._cancel(waits, "cancelled", "the orchestrator stopped waiting for it (it was cancelled)")

    def collect(self, delegation_ids: Iterable[str]) -> None:
        """Forget delegations whose reports the caller has safely kept (in its checkpointed
        messages): their records go from Redis, on the listener's thread rather than the
        caller's."""
        ids = list(delegation_ids)
        with self._lock:
            self._forget_sent(ids)
            if self._detached:
                return  # nothing listens any more: the records expire by themselves
            self._collectable.extend(ids)
        self._listener.ensure_running()

    def close(self) -> None:
        """Cancel everything still out and stop listening. Calls still waiting get a
        `cancelled` report at once; a later send starts afresh."""
        self._shut(raising=None)

    def interrupt(self) -> None:
        """Cancel everything still out, as `close` does, except that calls still waiting raise
        RunInterruptedError instead of returning a `cancelled` report: an interrupted run then
        checkpoints no answer for them, and resuming it sends them again."""
        self._shut(raising=RunInterruptedError("the run was interrupted; resuming it sends this again"))

    def _shut(self, raising: Exception | None) -> None:
        self._listener.stopping()
        with self._lock:
            waits = list(self._waits.values())
            sent = [*self._sent, *self._collectable]
            self._forget_sent(self._sent)
            self._collectable.clear()
        message = "the orchestrator stopped waiting for it (it was cancelled)"
        self._cancel(waits, "cancelled", message, raising=raising)
        with contextlib.suppress(*CONNECTION_ERRORS):
            self.ledger.forget(sent)
        self._listener.stop()

    def detach(self) -> None:
        """Stop waiting, for good, without cancelling anything: every call still waiting raises
        DetachedError, and the delegations run on for a resumed run (with a checkpointer) to
        re-attach to. A batch stops this way, so that its next run loses no work."""
        self._listener.stopping()
        with self._lock:
            self._detached = True
            waits = list(self._waits.values())
            self._forget_sent(self._sent)
            collectable, self._collectable = self._collectable, []
        with contextlib.suppress(*CONNECTION_ERRORS):
            self.ledger.forget(collectable)
        for wait in waits:
            self._resolve(wait, DetachedError("the orchestrator detached from this delegation"))
        self._listener.stop()

    def _cancel(
        self, waits: list[_Wait], status: FailureStatus, message: str, raising: Exception | None = None
    ) -> None:
        by_queue: dict[str, list[str]] = {}
        for wait in waits:
            by_queue.setdefault(wait.queue, []).append(wait.delegation.id)
        try:
            self.ledger.forget([wait.delegation.id for wait in waits])
            for queue, ids in by_queue.items():
                self.ledger.purge_queued(queue, ids)
        except CONNECTION_ERRORS as error:
            logger.warning("could not cancel %d delegation(s) in Redis: %s", len(waits), error)
        for wait in waits:
            self._resolve(wait, raising or _failure(wait.delegation, status, message))

    def _forget_sent(self, ids: Iterable[str]) -> None:
        """Under the lock: these delegations are no longer this client's to tidy up."""
        for delegation_id in list(ids):
            self._sent.discard(delegation_id)
            self._answered.pop(delegation_id, None)

    def _resolve(self, wait: _Wait, outcome: Report | Exception) -> None:
        with self._lock:
            ours = self._waits.get(wait.delegation.id) is wait
            if ours:
                del self._waits[wait.delegation.id]
                if isinstance(outcome, Report) and wait.delegation.id in self._sent:
                    self._answered[wait.delegation.id] = wait.future
            self.states.pop(wait.delegation.id, None)
        if ours:
            self._slots.free()
        if wait.future.done():
            return
        if isinstance(outcome, Exception):
            wait.future.set_exception(outcome)
        else:
            wait.future.set_result(outcome)

    def _take_slot(self, *, blocking: bool) -> bool:
        if self._slots.take(blocking=blocking, stopped=lambda: self._detached):
            return True
        if blocking:
            raise DetachedError("this client was detached: it sends nothing more")
        return False

    @property
    def outstanding(self) -> int:
        """Delegations sent (or re-attached to) whose reports have not arrived yet."""
        with self._lock:
            return len(self._waits)

    # What the listener hands over, on its thread.

    def _deliver(self, raw_reports: list[bytes]) -> None:
        for raw in raw_reports:
            try:
                report = Report.model_validate_json(raw)
            except ValidationError as error:
                logger.error("a worker pushed a report this orchestrator cannot read: %s", error)
                continue
            with self._lock:
                wait = self._waits.get(report.delegation_id)
            if wait is not None:
                self._resolve(wait, report)

    def _forget_collected(self) -> None:
        with self._lock:
            collectable, self._collectable = self._collectable, []
        if collectable:
            self.ledger.forget(collectable)

    def _tick(self) -> None:
        with self._lock:
            waits = list(self._waits.values())
        self._check(waits)
        sweep(self.ledger, self.app, self.settings, self._counter)

    def _lost_contact(self, error: Exception) -> None:
        with self._lock:
            waits = list(self._waits.values())
        lost = f"lost contact with Redis for {self.settings.redis_outage:g} s: {error}"
        for wait in waits:
            self._resolve(wait, _failure(wait.delegation, "error", lost))

    def _check(self, waits: list[_Wait]) -> None:
        if not waits:
            return
        now_ms, records = self.ledger.snapshot([wait.delegation.id for wait in waits])
        checks = Checks(self.ledger, self.settings)
        for wait in waits:
            record = records.get(wait.delegation.id)
            limits = timing(wait.delegation.limits)
            if record is None and not wait.recorded:
                continue  # still being sent
            if record is None:
                self._resolve(
                    wait,
                    _failure(
                        wait.delegation,
                        "cancelled",
                        "its record is gone from Redis: cancelled elsewhere, or expired",
                    ),
                )
                continue
            state = record.state
            with self._lock:
                self.states[wait.delegation.id] = state
            if state in FINAL_STATES:
                self._resolve(wait, _parse(wait.delegation, record.report))
            elif state == State.QUEUED:
                stuck = checks.never_runs(record, now_ms, wait.queue, limits)
                if stuck is not None:
                    self._cancel([wait], *stuck)
            elif state == State.RUNNING:
                late = overran(record, now_ms, limits)
                if late is not None:
                    self._cancel([wait], *late)


def _parse(delegation: Delegation, raw: str) -> Report:
    try:
        return Report.model_validate_json(raw)
    except ValidationError as error:
        return _failure(
            delegation, "error", f"the worker sent a report this orchestrator cannot read: {error}"
        )


def _failure(delegation: Delegation, status: FailureStatus, message: str) -> Report:
    return Report.failure(delegation, status, redact(message, delegation.secret_values()))


def _close_if_alive(client: weakref.ref[DelegationClient]) -> None:
    alive = client()
    if alive is not None:
        alive.close()
