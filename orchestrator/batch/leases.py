"""A submitted main run lives the delegation lifecycle (`shared.ledger`): `taskforce submit`
records it, a main-run worker claims it and holds its lease while it runs, and its result is
stored only by the holder of that lease.

So a main-run worker that is killed hands its runs over within a lease and a refresh (any
process sweeping finds the lapse and publishes the run again), a message that comes twice runs
once, a run whose workers keep dying is dead-lettered, and a worker that was frozen past its
lease (SIGSTOP, a paused VM) and wakes finds the run taken: it stops waiting on its delegations,
which the newer attempt has re-attached to, and writes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.delegation.client import DelegationClient
from shared.lease_keeping import LeaseKeeping
from shared.ledger import State

logger = logging.getLogger(__name__)

MAIN_RUN_LABEL = "main"
"""What a main run's record names as its subagent, which dead letters and pool metrics show."""


@dataclass
class MainRun:
    """One claimed main run in this process, and the clients its agent waits on."""

    id: str
    token: str
    attempt: int
    lease_s: float
    handed_back: bool = field(default=False, repr=False)
    """The worker is stopping and the grace is over: the run goes back to the queue."""
    _clients: list[DelegationClient] = field(default_factory=list, repr=False)
    _lost: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def watch(self, client: DelegationClient) -> None:
        """Attach the run's client; a run already lost detaches it at once."""
        with self._lock:
            self._clients.append(client)
            lost = self._lost
        if lost:
            client.detach()

    def clients(self) -> list[DelegationClient]:
        with self._lock:
            return list(self._clients)

    def lost(self) -> None:
        """Detach, never cancel: the delegations are the newer attempt's now too."""
        self._detach()

    def hand_back(self) -> None:
        """Detach, never cancel: the next attempt, on another worker, re-attaches to the
        delegations from the run's checkpoint."""
        self.handed_back = True
        self._detach()

    def _detach(self) -> None:
        with self._lock:
            self._lost = True
            clients = list(self._clients)
        for client in clients:
            client.detach()


class MainRunKeeper(LeaseKeeping[MainRun]):
    def claim(self, run_id: str) -> MainRun | None:
        """Take the run if it is queued; None means its message is to be dropped (running
        elsewhere, finished, dead-lettered, or never recorded)."""
        token = self.token()
        claim = self._ledger.claim(run_id, token, self.worker, self._timing.lease_s)
        if claim.outcome != "run":
            logger.info("dropped a message for main run %s: it is %s", run_id, claim.outcome)
            return None
        run = MainRun(run_id, token, claim.attempt, self._timing.lease_s)
        self.hold(run)
        if claim.attempt > 1:
            logger.warning("main run %s: attempt %d, resuming from its checkpoint", run_id, claim.attempt)
        return run

    def finish(self, run: MainRun, result: str, also: Sequence[tuple[str, str, str]]) -> bool:
        """Store the run's result, and `also` (its batch's fields), if the run is still ours."""
        self.let_go(run)
        stored = self._ledger.finish(
            run.id, State.REPORTED, result, token=run.token, ttl_s=self._settings.result_expires, also=also
        )
        if not stored:
            logger.warning("the result of main run %s came too late: it was no longer ours", run.id)
        return stored
