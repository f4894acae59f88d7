"""How many delegations one client may have out at once (`max_in_flight`): a send past the cap
waits for a report to free a slot, so that a turn of a thousand calls cannot flood the pools."""

from __future__ import annotations

import threading
from collections.abc import Callable

_RECHECK_S = 0.5
"""How often a blocked send looks whether its client stopped sending meanwhile."""


class Slots:
    """At most `size` slots taken at a time; no limit at all for None."""

    def __init__(self, size: int | None) -> None:
        self._free = threading.BoundedSemaphore(size) if size else None

    def take(self, *, blocking: bool, stopped: Callable[[], bool]) -> bool:
        """Whether a slot was taken. Blocking, it waits for one, unless `stopped` turns true
        meanwhile (the client was detached), when it takes none."""
        if self._free is None:
            return True
        if not blocking:
            return self._free.acquire(blocking=False)
        while not self._free.acquire(timeout=_RECHECK_S):
            if stopped():
                return False
        return True

    def free(self) -> None:
        if self._free is not None:
            self._free.release()
