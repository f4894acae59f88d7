"""The worker's side of the delegation lifecycle (`shared.ledger`): claim, lease, report.

One keeper thread per worker process renews the leases of every delegation running in it,
announces the queues the worker consumes, and sweeps for delegations whose worker went silent.
It is never a subagent's own thread, which a hung tool may block: a worker is alive for as
long as its process is, and a SIGKILLed one stops renewing at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from celery import Celery
from redis.exceptions import RedisError

from shared.celery_app import publish
from shared.ledger import Ledger, State
from shared.metrics import ProcessCounts
from shared.schemas import Delegation, Report
from shared.settings import Settings
from shared.sweeper import sweep
from shared.timing import timing
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


class LeaseKeeper:
    def __init__(
        self, ledger: Ledger, app: Celery, settings: Settings, worker: str, queues: Sequence[str] = ()
    ) -> None:
        self._ledger = ledger
        self._app = app
        self._settings = settings
        self._timing = timing(settings.limits(recursion_limit=1))
        self.worker = worker
        self.counter = ProcessCounts(ledger.client, ledger.namespace, worker)
        self._queues = list(queues)
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="taskforce-leases", daemon=True)

    def start(self) -> LeaseKeeper:
        self._tick()
        self._thread.start()
        return self

    def claim(self, delegation: Delegation) -> Run | None:
        """Take the delegation if it is queued; None means its message is to be dropped (it is
        running elsewhere, finished, cancelled or unknown)."""
        token = self._token()
        claim = self._ledger.claim(delegation.id, token, self.worker, delegation.limits.lease_s)
        if claim.outcome != "run":
            logger.info("dropped a message for delegation %s: it is %s", delegation.id, claim.outcome)
            return None
        run = Run(delegation, token, claim.attempt)
        with self._lock:
            self._runs[delegation.id] = run
        self.counter.started(delegation.subagent_type, claim.waited_ms / 1000)
        return run

    def reject(self, payload: object, problem: str) -> None:
        """Answer a message this worker cannot read (another schema version, another secrets
        key) with the problem, rather than leave its caller waiting for the queue timeout."""
        delegation_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(delegation_id, str):
            logger.error("dropped an unreadable message: %s", problem)
            return
        token = self._token()
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
        with self._lock:
            self._runs.pop(run.delegation.id, None)
        if run.stopped == "handed back":
            self._hand_back(run)
        elif run.stopped is None:
            self._deliver(run.delegation.id, run.token, report)

    def _deliver(self, delegation_id: str, token: str, report: Report) -> None:
        stored = self._ledger.finish(
            delegation_id,
            State.REPORTED,
            report.model_dump_json(),
            token=token,
            ttl_s=self._settings.result_expires,
        )
        if stored:
            self.counter.finished(report)
        else:
            logger.warning("the report of delegation %s came too late: it was no longer ours", delegation_id)

    def _token(self) -> str:
        return f"{self.worker}/{uuid.uuid4().hex[:12]}"

    def shutdown(self, grace_s: float) -> None:
        """Stop taking part: say at once that this worker no longer serves its queues, and after
        `grace_s` hand every delegation still running back to the queue, so a stopping worker
        costs its delegations a restart, never their deadline. Called from a signal handler,
        so the work happens on a thread of its own."""
        with self._lock:
            queues, self._queues = self._queues, []
        threading.Thread(
            target=self._leave, args=(queues, grace_s), name="taskforce-leave", daemon=True
        ).start()

    def _leave(self, queues: list[str], grace_s: float) -> None:
        if queues:
            self._quietly(self._ledger.retire, self.worker, queues)
        time.sleep(grace_s)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop("handed back")

    def _hand_back(self, run: Run) -> None:
        if self._ledger.release(run.delegation.id, run.token):
            publication = self._ledger.publication(run.delegation.id)
            if publication is not None:
                publish(self._app, [publication])
            logger.warning(
                "handed delegation %s back to the queue: this worker is stopping", run.delegation.id
            )

    def _keep(self) -> None:
        while not self._stop.wait(self._timing.refresh_s):
            self._tick()

    def _tick(self) -> None:
        self._quietly(self._refresh)
        with self._lock:
            queues = list(self._queues)
        self._quietly(self._ledger.announce, self.worker, queues, self._timing.worker_silence_s)
        self._quietly(sweep, self._ledger, self._app, self._settings, self.counter)

    def _refresh(self) -> None:
        with self._lock:
            by_lease: dict[float, list[Run]] = defaultdict(list)
            for run in self._runs.values():
                by_lease[run.delegation.limits.lease_s].append(run)
        for lease_s, runs in by_lease.items():
            lost = set(self._ledger.refresh(((r.delegation.id, r.token) for r in runs), lease_s))
            for run in runs:
                if run.delegation.id in lost:
                    logger.warning("delegation %s is no longer this worker's; stopping it", run.delegation.id)
                    run.stop("lost")

    @staticmethod
    def _quietly(action: Callable[..., object], *args: object) -> None:
        # Redis may be restarting: the next tick tries again, and the lease outlives a few misses.
        started = time.monotonic()
        try:
            action(*args)
        except (RedisError, OSError) as error:
            logger.warning("lease keeping: %s (%.1f s)", error, time.monotonic() - started)
