"""Send delegations to the worker pools and wait for their reports.

Sending records the delegation in the ledger (`shared.ledger`), then publishes its message;
sending an id that is already recorded re-attaches to it instead, so a resumed run never sends
a delegation twice. Waiting costs no polling: one listener thread per client blocks on the
client's inbox, where workers push each report the moment they store it, and resolves the
future of the call waiting for it, sync (`wait`) or async (`await_report`). Once a second it
also checks what no push can tell: a job stuck in its queue, a queue no live worker consumes,
an attempt past its budget, leases that lapsed.

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
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from celery import Celery
from pydantic import ValidationError

from shared.celery_app import CONNECTION_ERRORS, publish, queue_for
from shared.context import redact
from shared.ledger import FINAL_STATES, INBOX_TTL_S, Publication, Recording, RecordView, State, open_ledger
from shared.metrics import CALLERS, ProcessCounts
from shared.schemas import Delegation, FailureStatus, Report
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.sweeper import sweep
from shared.timing import Timing, timing
from shared.tracing import leave_parent

logger = logging.getLogger(__name__)

# How often the listener looks at what pushes cannot tell it.
CHECK_EVERY_S = 1.0
# A worker announces itself once it is ready to consume, a few seconds after it starts; until a
# job has waited this long, an unserved queue is not yet proof that nobody is coming.
NO_WORKER_GRACE_S = 10.0
_WAKE = b"wake"
"""Pushed to a client's own inbox to end its listener's wait at once; never a report."""


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
        # Wakes the listener when closing; never rides out an outage, or closing would wait it out.
        self._waker = open_ledger(settings, riding_out_outages=False).client
        self._box = SecretBox(settings.secrets_key)
        self.inbox = self.ledger.inbox(uuid.uuid4().hex)
        self._waits: dict[str, _Wait] = {}
        self._sent: set[str] = set()
        self._answered: dict[str, Future[Report]] = {}
        """Reports in before their calls asked for them: a turn's calls wait one after another."""
        self._collectable: list[str] = []
        self.states: dict[str, str] = {}
        """The last state seen of each delegation still waited for (for progress displays)."""
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self._detached = False
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None
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
        waits = [_Wait(delegation, self._queue(delegation)) for delegation in delegations]
        ids = [delegation.id for delegation in delegations]
        try:
            with self._lock:
                if self._detached:
                    raise DetachedError("this client was detached: it sends nothing more")
                self._waits.update(zip(ids, waits, strict=True))
                self._sent.update(ids)
            states = self._record_and_publish(delegations, reply_to=self.inbox)
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
                self._free_slot()
            raise
        self._ensure_listening()
        return {wait.delegation.id: wait.future for wait in waits}

    def start(self, delegation: Delegation) -> None:
        """Record and publish the delegation without waiting for it: a background task, which
        outlives this client (closing it, or the interpreter's exit, cancels nothing started
        here) and whose report stays in its record until `result_expires` after it finishes,
        for `peek` to read from any process. Starting an id already recorded does nothing.
        Raises CONNECTION_ERRORS if Redis stays away through the retries."""
        if self._detached:
            raise DetachedError("this client was detached: it sends nothing more")
        self._record_and_publish([delegation], reply_to="")

    def _queue(self, delegation: Delegation) -> str:
        return queue_for(self.settings, delegation.queue or delegation.subagent_type)

    def _record_and_publish(self, delegations: Sequence[Delegation], *, reply_to: str) -> list[str | None]:
        """Publish each new delegation; returns each one's recorded state, None for a new one.
        `reply_to` is the inbox their reports are pushed to ("" for none: started, not waited
        for). A waited-for delegation found still queued is published again: the process that
        recorded it may have died before its message left, and a second copy runs once."""
        recordings = [self._recording(delegation, reply_to) for delegation in delegations]
        states = self.ledger.record(recordings)
        due_states = (None, State.QUEUED) if reply_to else (None,)
        due = [r.publication for r, state in zip(recordings, states, strict=True) if state in due_states]
        publish(self.app, due)
        return states

    def _recording(self, delegation: Delegation, reply_to: str) -> Recording:
        limits = timing(delegation.limits)
        message = delegation.to_wire(self._box)
        publication = Publication(
            delegation.id,
            json.dumps(message),
            repr([delegation.redacted()]),
            self._queue(delegation),
            message=message,
            limits=delegation.limits,
        )
        return Recording(
            publication,
            subagent_type=delegation.subagent_type,
            reply_to=reply_to,
            max_attempts=delegation.limits.max_attempts,
            guard_s=limits.queue_timeout_s,
            ttl_s=int(limits.outstanding_s + self.settings.result_expires),
        )

    def peek(self, delegation_ids: Sequence[str]) -> dict[str, Report | None]:
        """Without waiting: the report of each delegation that has one, None for one still
        queued or running, and no entry for one with no record (cancelled, collected or
        expired). Raises CONNECTION_ERRORS if Redis stays away through the retries."""
        now_ms, records = self.ledger.snapshot(delegation_ids)
        found: dict[str, Report | None] = {}
        serving: dict[str, int] = {}
        for delegation_id, record in records.items():
            if record.state == State.QUEUED:
                found[delegation_id] = self._give_up_if_stuck(delegation_id, record, now_ms, serving)
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

    def _give_up_if_stuck(
        self, delegation_id: str, record: RecordView, now_ms: int, serving: dict[str, int]
    ) -> Report | None:
        """What a waiting call's checks would do for a delegation nobody waits for: one that will
        never run is finished with a report saying why, which stays in its record for every
        later peek, and its message leaves the queue. None while it may still run."""
        queue = record.queue
        queued_for = record.queue_timeout_ms / 1000 or self.settings.queue_timeout
        limits = replace(timing(self.settings.limits(recursion_limit=1)), queue_timeout_s=queued_for)
        stuck = self._never_runs(record, now_ms, queue, limits, serving)
        if stuck is None:
            return None
        status, message = stuck
        report = Report(
            delegation_id=delegation_id,
            subagent_type=record.subagent,
            status=status,
            summary=message,
        )
        if not self.ledger.finish(
            delegation_id, State.REPORTED, report.model_dump_json(), ttl_s=self.settings.result_expires
        ):
            return None  # a worker took it meanwhile
        self.ledger.purge_queued(queue, [delegation_id])
        return report

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
            self._collectable.extend(ids)
        self._ensure_listening()

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
        self._closed.set()
        with self._lock:
            waits = list(self._waits.values())
            sent = [*self._sent, *self._collectable]
            self._forget_sent(self._sent)
            self._collectable.clear()
            listener = self._listener
        message = "the orchestrator stopped waiting for it (it was cancelled)"
        self._cancel(waits, "cancelled", message, raising=raising)
        with contextlib.suppress(*CONNECTION_ERRORS):
            self.ledger.forget(sent)
        self._stop_listening(listener)
        self._closed.clear()

    def detach(self) -> None:
        """Stop waiting, for good, without cancelling anything: every call still waiting raises
        DetachedError, and the delegations run on for a resumed run (with a checkpointer) to
        re-attach to. A batch stops this way, so that its next run loses no work."""
        self._closed.set()
        with self._lock:
            self._detached = True
            waits = list(self._waits.values())
            self._forget_sent(self._sent)
            collectable, self._collectable = self._collectable, []
            listener = self._listener
        with contextlib.suppress(*CONNECTION_ERRORS):
            self.ledger.forget(collectable)
        for wait in waits:
            self._resolve(wait, DetachedError("the orchestrator detached from this delegation"))
        self._stop_listening(listener)

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
            self._free_slot()
        if wait.future.done():
            return
        if isinstance(outcome, Exception):
            wait.future.set_exception(outcome)
        else:
            wait.future.set_result(outcome)

    def _take_slot(self, *, blocking: bool) -> bool:
        """Whether a slot was taken; blocking, until one is free (or the client is detached)."""
        if self._slots is None:
            return True
        if not blocking:
            return self._slots.acquire(blocking=False)
        while not self._slots.acquire(timeout=0.5):
            if self._detached:
                raise DetachedError("this client was detached: it sends nothing more")
        return True

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    @property
    def outstanding(self) -> int:
        """Delegations sent (or re-attached to) whose reports have not arrived yet."""
        with self._lock:
            return len(self._waits)

    # The listener.

    def _ensure_listening(self) -> None:
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen, name="taskforce-reports", daemon=True)
                self._listener.start()

    def _stop_listening(self, listener: threading.Thread | None) -> None:
        """Wake the listener from its blocking pop with a word in its own inbox, rather than
        wait up to half a second for the pop to time out: a batch closes a client per item.
        The inbox goes afterwards, with the word if the listener was not popping."""
        if listener is None or listener is threading.current_thread():
            return
        with contextlib.suppress(*CONNECTION_ERRORS):
            wake = self._waker.pipeline(transaction=False)
            wake.lpush(self.inbox, _WAKE)
            wake.expire(self.inbox, INBOX_TTL_S)  # should this process die before the delete
            wake.execute()
        listener.join(timeout=5)
        with contextlib.suppress(*CONNECTION_ERRORS):
            self._waker.delete(self.inbox)

    def _listen(self) -> None:
        """Runs until the client closes: starting a thread and a connection per run would cost
        more than a delegation."""
        blocking = open_ledger(self.settings, riding_out_outages=False).client
        next_check = time.monotonic() + CHECK_EVERY_S
        unreachable_since: float | None = None
        while not self._closed.is_set():
            try:
                popped = blocking.blpop(
                    [self.inbox], timeout=max(min(next_check - time.monotonic(), 0.5), 0.05)
                )
                if popped is not None:
                    self._deliver([popped[1], *(blocking.lpop(self.inbox, 100) or [])])
                with self._lock:
                    collectable, self._collectable = self._collectable, []
                if collectable:
                    self.ledger.forget(collectable)
                if time.monotonic() >= next_check:
                    with self._lock:
                        waits = list(self._waits.values())
                    self._check(waits)
                    sweep(self.ledger, self.app, self.settings, self._counter)
                    next_check = time.monotonic() + CHECK_EVERY_S
                unreachable_since = None
            except CONNECTION_ERRORS as error:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > self.settings.redis_outage:
                    with self._lock:
                        waits = list(self._waits.values())
                    lost = f"lost contact with Redis for {self.settings.redis_outage:g} s: {error}"
                    for wait in waits:
                        self._resolve(wait, _failure(wait.delegation, "error", lost))
                self._closed.wait(0.5)
        blocking.close()

    def _deliver(self, raw_reports: list[bytes | str]) -> None:
        for raw in raw_reports:
            if raw in (_WAKE, _WAKE.decode()):
                continue
            try:
                report = Report.model_validate_json(raw)
            except ValidationError as error:
                logger.error("a worker pushed a report this orchestrator cannot read: %s", error)
                continue
            with self._lock:
                wait = self._waits.get(report.delegation_id)
            if wait is not None:
                self._resolve(wait, report)

    def _check(self, waits: list[_Wait]) -> None:
        if not waits:
            return
        now_ms, records = self.ledger.snapshot([wait.delegation.id for wait in waits])
        serving: dict[str, int] = {}
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
                stuck = self._never_runs(record, now_ms, wait.queue, limits, serving)
                if stuck is not None:
                    self._cancel([wait], *stuck)
            elif state == State.RUNNING:
                running = (now_ms - (record.claimed_at_ms or now_ms)) / 1000
                if running > limits.attempt_budget_s:
                    worker = record.worker or "?"
                    self._cancel(
                        [wait],
                        "timeout",
                        f"worker {worker} sent no report within {limits.attempt_budget_s:g} s",
                    )

    def _never_runs(
        self, record: RecordView, now_ms: int, queue: str, limits: Timing, serving: dict[str, int]
    ) -> tuple[FailureStatus, str] | None:
        """Why a queued delegation will never run, if it will not: no worker took it within its
        queue timeout, or no live worker consumes its queue (`serving` caches the answers)."""
        waited = (now_ms - (record.queued_at_ms or now_ms)) / 1000
        if waited > limits.queue_timeout_s:
            return "timeout", (
                f"no worker took the job within {limits.queue_timeout_s:g} s; "
                f"are workers consuming queue {queue!r}?"
            )
        if waited > NO_WORKER_GRACE_S:
            if queue not in serving:
                serving[queue] = self.ledger.serving(queue, limits.worker_silence_s)
            if not serving[queue]:
                return "error", _no_worker(queue)
        return None


def _no_worker(queue: str) -> str:
    return (
        f"no live worker consumes queue {queue!r}; start one with `taskforce worker -Q {queue}` "
        "(with the same TASKFORCE_* settings as this orchestrator)"
    )


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
