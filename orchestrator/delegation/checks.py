"""What no pushed report can tell a waiting client: a delegation that will never run (no worker
took its job in time, or no live worker consumes its queue), an attempt past its budget. The
client applies these once a second to the calls it waits for, and `peek` to a started task when
it is looked at."""

from __future__ import annotations

from dataclasses import replace

from shared.ledger import Ledger, RecordView, State
from shared.schemas import FailureStatus, Report
from shared.settings import Settings
from shared.timing import Timing, timing

NO_WORKER_GRACE_S = 10.0
"""A worker announces itself once it is ready to consume, a few seconds after it starts; until a
job has waited this long, an unserved queue is not yet proof that nobody is coming."""

Verdict = tuple[FailureStatus, str]


class Checks:
    """One pass of the checks over some delegations: whether a queue is served is asked of
    Redis once per queue and pass."""

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self._serving: dict[str, int] = {}

    def never_runs(self, record: RecordView, now_ms: int, queue: str, limits: Timing) -> Verdict | None:
        """Why a queued delegation will never run, if it will not: no worker took it within
        its queue timeout, or no live worker consumes its queue."""
        waited = (now_ms - (record.queued_at_ms or now_ms)) / 1000
        if waited > limits.queue_timeout_s:
            return "timeout", (
                f"no worker took the job within {limits.queue_timeout_s:g} s; "
                f"are workers consuming queue {queue!r}?"
            )
        if waited > NO_WORKER_GRACE_S:
            if queue not in self._serving:
                self._serving[queue] = self.ledger.serving(queue, limits.worker_silence_s)
            if not self._serving[queue]:
                return "error", no_worker(queue)
        return None

    def give_up_if_stuck(self, delegation_id: str, record: RecordView, now_ms: int) -> Report | None:
        """What a waiting call's checks would do for a delegation nobody waits for: one that
        will never run is finished with a report saying why, which stays in its record for
        every later peek, and its message leaves the queue. None while it may still run."""
        queued_for = record.queue_timeout_ms / 1000 or self.settings.queue_timeout
        limits = replace(timing(self.settings.limits(recursion_limit=1)), queue_timeout_s=queued_for)
        stuck = self.never_runs(record, now_ms, record.queue, limits)
        if stuck is None:
            return None
        status, message = stuck
        report = Report(
            delegation_id=delegation_id, subagent_type=record.subagent, status=status, summary=message
        )
        ttl_s = self.settings.result_expires
        if not self.ledger.finish(delegation_id, State.REPORTED, report.model_dump_json(), ttl_s=ttl_s):
            return None  # a worker took it meanwhile
        self.ledger.purge_queued(record.queue, [delegation_id])
        return report


def overran(record: RecordView, now_ms: int, limits: Timing) -> Verdict | None:
    """Why a running attempt is given up on, if it is: it ran past its budget without a report."""
    running = (now_ms - (record.claimed_at_ms or now_ms)) / 1000
    if running <= limits.attempt_budget_s:
        return None
    return "timeout", f"worker {record.worker or '?'} sent no report within {limits.attempt_budget_s:g} s"


def no_worker(queue: str) -> str:
    return (
        f"no live worker consumes queue {queue!r}; start one with `taskforce worker -Q {queue}` "
        "(with the same TASKFORCE_* settings as this orchestrator)"
    )
