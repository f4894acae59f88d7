"""The one thread per client that waits for reports. Waiting costs no polling: it blocks on the
client's inbox, where workers push each report the moment they store it, and hands what it
pops to the client. Once a second (`CHECK_EVERY_S`) it gives the client a tick for what no push
can tell, and it rides out a Redis outage for as long as the settings allow before telling the
client contact is lost."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import redis

from shared.celery_app import CONNECTION_ERRORS
from shared.ledger import INBOX_TTL_S, open_ledger
from shared.settings import Settings

CHECK_EVERY_S = 1.0
"""How often the client is given a tick to look at what pushes cannot tell it."""

WAKE = b"wake"
"""Pushed to a client's own inbox to end its listener's wait at once; never a report."""


class InboxListener:
    """Started on the first send and kept until the client closes: a thread and a connection per
    run would cost more than a delegation. The callbacks run on the listener's thread:
    `on_reports` with what was popped (the wake word left out), `on_pass` after every pop or
    timeout, `on_tick` once a second, `on_outage` with the error once Redis has been away for
    longer than `redis_outage`."""

    def __init__(
        self,
        settings: Settings,
        inbox: str,
        *,
        on_reports: Callable[[list[bytes]], None],
        on_pass: Callable[[], None],
        on_tick: Callable[[], None],
        on_outage: Callable[[Exception], None],
    ) -> None:
        self.settings = settings
        self.inbox = inbox
        self._on_reports, self._on_pass, self._on_tick, self._on_outage = (
            on_reports,
            on_pass,
            on_tick,
            on_outage,
        )
        # Wakes the thread when stopping; never rides out an outage, or stopping would wait it out.
        self._waker = open_ledger(settings, riding_out_outages=False).client
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with self._lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._listen, name="taskforce-reports", daemon=True)
                self.thread.start()

    def stopping(self) -> None:
        """From now on the thread finishes its pass and ends; `stop` waits for it."""
        self._stopping.set()

    def stop(self) -> None:
        """End the thread and drop the inbox. Wakes the thread from its blocking pop with a word
        in its own inbox, rather than waiting up to half a second for the pop to time out: a
        batch closes a client per item. The inbox goes afterwards, with the word if the thread
        was not popping. A later `ensure_running` starts afresh."""
        self._stopping.set()
        with self._lock:
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            with contextlib.suppress(*CONNECTION_ERRORS):
                wake = self._waker.pipeline(transaction=False)
                wake.lpush(self.inbox, WAKE)
                wake.expire(self.inbox, INBOX_TTL_S)  # should this process die before the delete
                wake.execute()
            thread.join(timeout=5)
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._waker.delete(self.inbox)
        self._stopping.clear()

    def _listen(self) -> None:
        blocking = open_ledger(self.settings, riding_out_outages=False).client
        next_check = time.monotonic() + CHECK_EVERY_S
        unreachable_since: float | None = None
        while not self._stopping.is_set():
            try:
                self._pop(blocking, timeout=max(min(next_check - time.monotonic(), 0.5), 0.05))
                self._on_pass()
                if time.monotonic() >= next_check:
                    self._on_tick()
                    next_check = time.monotonic() + CHECK_EVERY_S
                unreachable_since = None
            except CONNECTION_ERRORS as error:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since > self.settings.redis_outage:
                    self._on_outage(error)
                self._stopping.wait(0.5)
        blocking.close()

    def _pop(self, blocking: redis.Redis, timeout: float) -> None:
        popped = blocking.blpop([self.inbox], timeout=timeout)
        if popped is None:
            return
        raw = [popped[1], *(blocking.lpop(self.inbox, 100) or [])]
        reports = [item for item in raw if item not in (WAKE, WAKE.decode())]
        if reports:
            self._on_reports(reports)
