"""Every time limit of one delegation, derived in one place from its `Limits`.

The worker and the orchestrator both call `timing()`: the worker for its leases and how long
what it publishes is kept; the orchestrator for the message's expiry, Celery's time limits and
how long it waits. The worker's own deadline is the delegation's `timeout_s`, which every limit
here outlasts.
Deriving them separately is how the two sides once ended up waiting 25 minutes for a job that
had died in its first second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.schemas import Limits

# Past its deadline a worker still needs a moment to write the timeout report; past this grace
# the orchestrator stops trusting the attempt.
REPORT_GRACE_S = 30.0
# Redis redelivers an unacknowledged message after its visibility timeout. Liveness comes from
# the lease, so this is only the backstop for a message a worker took but never claimed; it must
# still outlast the longest run, or a running job's message would come back while it runs.
VISIBILITY_MARGIN_S = 600.0
# During a Redis outage, sends and ledger commands try again this often until the outage
# budget (`TASKFORCE_REDIS_OUTAGE`) is spent.
OUTAGE_POLL_S = 0.5
# A paused subagent (waiting for an approval) is kept this long after its last step, so a
# question nobody answers does not stay in Redis for ever (`workers.paused_runs`).
PAUSE_TTL_S = 7 * 24 * 3600


def outage_retries(budget_s: float) -> int:
    """Retries, `OUTAGE_POLL_S` apart, that ride out an outage of `budget_s`."""
    return max(1, math.ceil(budget_s / OUTAGE_POLL_S))


@dataclass(frozen=True)
class Timing:
    soft_limit_s: float
    """Celery's soft time limit (enforced by the prefork pool only)."""
    hard_limit_s: float
    """Celery's hard time limit: the pool kills the run."""
    lease_s: float
    """A running delegation whose lease is not refreshed for this long is handed to another worker."""
    refresh_s: float
    """How often a worker renews its leases and announces which queues it serves."""
    queue_timeout_s: float
    """How long a message may wait for a worker; it expires afterwards and never runs."""
    attempt_budget_s: float
    """How long the orchestrator waits for the report of one claimed attempt."""
    visibility_timeout_s: int
    """The broker's redelivery backstop (see VISIBILITY_MARGIN_S)."""
    outstanding_s: float
    """The longest a delegation can legitimately stay unfinished: queued, then every attempt."""

    @property
    def worker_silence_s(self) -> float:
        """A worker that has not announced itself for this long is taken to be gone."""
        return 3 * self.refresh_s


def timing(limits: Limits) -> Timing:
    hard_limit = limits.timeout_s + REPORT_GRACE_S
    return Timing(
        soft_limit_s=limits.timeout_s + REPORT_GRACE_S / 2,
        hard_limit_s=hard_limit,
        lease_s=limits.lease_s,
        refresh_s=max(limits.lease_s / 4, 0.25),
        queue_timeout_s=limits.queue_timeout_s,
        attempt_budget_s=hard_limit + limits.lease_s,
        visibility_timeout_s=int(hard_limit + VISIBILITY_MARGIN_S),
        outstanding_s=limits.queue_timeout_s + limits.max_attempts * (hard_limit + limits.lease_s),
    )
