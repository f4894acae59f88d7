"""The worker's side of the delegation lifecycle (`shared.ledger`): claim, lease, report.

The keeping itself (renewing, announcing, sweeping, handing work back when the worker stops) is
`shared.lease_keeping`'s; this adds what is a delegation's: its claim, and its report unless it
was handed back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import Literal

from shared.lease_keeping import LeaseKeeping
from shared.ledger import State
from shared.schemas import Delegation, Report
from workers.stepwise import Stop

logger = logging.getLogger(__name__)

StopReason = Literal["lost", "handed back"]


@dataclass
class Run:
    """One claimed delegation running in this process, which the keeper may have to stop: its
    lease was taken over or cancelled ("lost"), or the worker is shutting down ("handed back")."""

    delegation: Delegation
    token: str
    attempt: int
    stopped: StopReason | None = None
    _stop: Stop | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def id(self) -> str:
        return self.delegation.id

    @property
    def lease_s(self) -> float:
        return self.delegation.limits.lease_s

    def lost(self) -> None:
        self.stop("lost")

    def hand_back(self) -> None:
        self.stop("handed back")

    def bind(self, stop: Stop) -> None:
        """Attach what stops the running subagent; a stop that came first stops it now."""
        with self._lock:
            self._stop = stop
            stopped = self.stopped is not None
        if stopped:
            stop()

    def stop(self, reason: StopReason) -> None:
        with self._lock:
            if self.stopped is not None:
                return
            self.stopped = reason
            stop = self._stop
        if stop is not None:
            # The run may have just ended and closed its loop: then there is nothing to stop.
            with contextlib.suppress(RuntimeError):
                stop()


class LeaseKeeper(LeaseKeeping[Run]):
    def claim(self, delegation: Delegation) -> Run | None:
        """Take the delegation if it is queued; None means its message is to be dropped (it is
        running elsewhere, finished, cancelled or unknown)."""
        token = self.token()
        claim = self._ledger.claim(
            delegation.id,
            token,
            self.worker,
            delegation.limits.lease_s,
            counting=self.counter.started(delegation.subagent_type),
        )
        if claim.outcome != "run":
            logger.info("dropped a message for delegation %s: it is %s", delegation.id, claim.outcome)
            return None
        run = Run(delegation, token, claim.attempt)
        self.hold(run)
        return run

    def reject(self, payload: object, problem: str) -> None:
        """Answer a message this worker cannot read (another schema version, another secrets
        key) with the problem, rather than leave its caller waiting for the queue timeout."""
        delegation_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(delegation_id, str):
            logger.error("dropped an unreadable message: %s", problem)
            return
        token = self.token()
        if self._ledger.claim(delegation_id, token, self.worker, self._timing.lease_s).outcome != "run":
            return
        subagent_type = payload.get("subagent_type") if isinstance(payload, dict) else None
        report = Report(
            delegation_id=delegation_id,
            subagent_type=str(subagent_type or "unknown"),
            status="error",
            summary=f"worker {self.worker} could not read the delegation: {problem}",
            worker=self.worker,
        )
        self._deliver(delegation_id, token, report)

    def finish(self, run: Run, report: Report) -> None:
        """Deliver the run's report, or hand the delegation back if the worker is stopping."""
        if run.stopped == "handed back":
            self.requeue(run)
            return
        self.let_go(run)
        if run.stopped is None:
            self._deliver(run.delegation.id, run.token, report)

    def _deliver(self, delegation_id: str, token: str, report: Report) -> None:
        stored = self._ledger.finish(
            delegation_id,
            State.REPORTED,
            report.model_dump_json(),
            token=token,
            ttl_s=self._settings.result_expires,
            counting=self.counter.finished(report),
        )
        if not stored:
            logger.warning("the report of delegation %s came too late: it was no longer ours", delegation_id)
