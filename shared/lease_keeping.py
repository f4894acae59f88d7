"""What every process that runs leased work does alongside it: renew its leases, announce the
queues it consumes, sweep for work whose process went silent (`shared.ledger`), and, when the
process stops, hand back to the queue what is still running after the grace period.

Subagent workers (`workers.leases`) and main-run workers (`orchestrator.batch.leases`) both
run leased work; each builds its claims and reports on this. One keeper thread per process does
the keeping. It is never a thread of the work itself, which a hung tool may block: a process is
alive for as long as it renews, and a SIGKILLed (or SIGSTOPped) one stops renewing at once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, Self, TypeVar

from celery import Celery
from redis.exceptions import RedisError

from shared.celery_app import publish
from shared.ledger import Ledger
from shared.metrics import ProcessCounts
from shared.settings import Settings
from shared.sweeper import sweep
from shared.timing import timing

logger = logging.getLogger(__name__)


class Held(Protocol):
    """One piece of leased work running in this process."""

    @property
    def id(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def lease_s(self) -> float: ...

    def lost(self) -> None:
        """Its lease was taken over, cancelled or forgotten: stop it, and report nothing."""

    def hand_back(self) -> None:
        """The process is stopping and the grace period is over: stop it, for the keeper to hand
        back to the queue (`LeaseKeeping.requeue`) rather than report."""


H = TypeVar("H", bound=Held)


class LeaseKeeping(Generic[H]):
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
        self._held: dict[str, H] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="taskforce-leases", daemon=True)

    def start(self) -> Self:
        self._tick()
        self._thread.start()
        return self

    def token(self) -> str:
        """A claim's token, unique to one attempt in this process: the lease is its."""
        return f"{self.worker}/{uuid.uuid4().hex[:12]}"

    def hold(self, held: H) -> None:
        with self._lock:
            self._held[held.id] = held

    def let_go(self, held: H) -> None:
        with self._lock:
            self._held.pop(held.id, None)

    def holding(self) -> list[H]:
        with self._lock:
            return list(self._held.values())

    def stop_announcing(self) -> list[str]:
        """The queues this process announced, which it no longer does."""
        with self._lock:
            queues, self._queues = self._queues, []
        return queues

    def shutdown(self, grace_s: float) -> None:
        """Stop taking part: say at once that this process no longer serves its queues, and after
        `grace_s` hand back all it still runs, so that a stopping worker costs its work a restart,
        never its deadline. Called from a signal handler, so the work happens on a thread of
        its own."""
        queues = self.stop_announcing()
        threading.Thread(
            target=self._leave, args=(queues, grace_s), name="taskforce-leave", daemon=True
        ).start()

    def _leave(self, queues: list[str], grace_s: float) -> None:
        if queues:
            self._quietly(self._ledger.retire, self.worker, queues)
        time.sleep(grace_s)
        for held in self.holding():
            held.hand_back()

    def requeue(self, held: H) -> None:
        """Put work this process stopped back in its queue, its attempt not spent; a lease that
        is no longer ours hands back nothing."""
        self.let_go(held)
        if self._ledger.release(held.id, held.token):
            publication = self._ledger.publication(held.id)
            if publication is not None:
                publish(self._app, [publication])
            logger.warning("handed %s back to the queue: this worker is stopping", held.id)

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
        by_lease: dict[float, list[H]] = defaultdict(list)
        for held in self.holding():
            by_lease[held.lease_s].append(held)
        for lease_s, group in by_lease.items():
            lost = set(self._ledger.refresh(((h.id, h.token) for h in group), lease_s))
            for held in group:
                if held.id in lost:
                    logger.warning("%s is no longer this worker's; stopping it", held.id)
                    held.lost()

    @staticmethod
    def _quietly(action: Callable[..., object], *args: object) -> None:
        # Redis may be restarting: the next tick tries again, and the lease outlives a few misses.
        started = time.monotonic()
        try:
            action(*args)
        except (RedisError, OSError) as error:
            logger.warning("lease keeping: %s (%.1f s)", error, time.monotonic() - started)
