"""A sync subagent's run, on a thread of its own, stopped between its steps.

A subagent whose model and tools have no async implementation gains nothing from the process's
event loop (`workers.event_loop`): under `ainvoke` each of its model and tool calls is handed
to a thread and back, which made a small subagent's graph cost 4.2 ms of CPU against 1.6 ms
under sync `stream`, the way deepagents runs it under `invoke`. Run this way, it keeps the
guarantees the loop gives: a stop (the lease lost, the worker leaving) and the deadline are
checked after every step, and the waiting thread gives up at the deadline itself, so a step
that hangs costs a thread, never the Celery slot or the caller's wait.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.thread
import contextvars
import os
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import TypeVar, cast

from workers.event_loop import DaemonThreadExecutor

_T = TypeVar("_T")

Stop = Callable[[], object]
"""Stops a run from any thread; given to whoever may have to (`workers.leases.Run.bind`)."""

OnStop = Callable[[Stop], None]


class DeadlinePassedError(Exception):
    """Our own deadline ended the run, as opposed to a `TimeoutError` raised by a tool or a client."""


class Steps:
    """What a running body checks between its steps."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._stopped = threading.Event()
        self.woken = threading.Event()

    def stop(self) -> None:
        self._stopped.set()
        self.woken.set()

    def check(self) -> None:
        """Raise if the run is to end here: stopped from outside, or past its deadline."""
        if self._stopped.is_set():
            raise concurrent.futures.CancelledError
        if time.monotonic() >= self.deadline:
            raise DeadlinePassedError


_executors: dict[int, DaemonThreadExecutor] = {}
_executors_lock = threading.Lock()


def _executor() -> DaemonThreadExecutor:
    """This process's: a prefork child's threads are not its parent's."""
    with _executors_lock:
        return _executors.setdefault(os.getpid(), DaemonThreadExecutor())


def _leave_daemon_pool_threads() -> None:
    """At interpreter exit, do not wait for executor threads a delegation's thread started.

    LangGraph runs a step's sync tool calls on a `ThreadPoolExecutor`; started from a daemon
    thread its threads are daemons too, yet `concurrent.futures` joins every executor thread at
    exit, so one hung tool kept a stopping worker alive until it was killed. On the event loop
    the same tool runs on a daemon thread of the loop's executor (`DaemonThreadExecutor`), which
    ends with the process; this makes the two paths alike. Written against CPython 3.11-3.12's
    `concurrent.futures.thread._threads_queues`."""
    with concurrent.futures.thread._global_shutdown_lock:
        queues = cast("MutableMapping[threading.Thread, object]", concurrent.futures.thread._threads_queues)
        for thread in [thread for thread in list(queues) if thread.daemon]:
            del queues[thread]


# Registered after `concurrent.futures.thread`'s own hook, so it runs before that one joins.
threading._register_atexit(_leave_daemon_pool_threads)  # type: ignore[attr-defined]


def run_stepwise(body: Callable[[Steps], _T], deadline: float, on_stop: OnStop | None = None) -> _T:
    """Run `body` on a daemon thread, in a copy of the caller's context, and wait for it here
    until `deadline` (a `time.monotonic()` value). `body` calls `Steps.check` between steps.

    Raises `concurrent.futures.CancelledError` if the run was stopped, `DeadlinePassedError`
    at the deadline (the body stops at its next check), or whatever `body` raised."""
    steps = Steps(deadline)
    if on_stop is not None:
        on_stop(steps.stop)
    future = _executor().submit(contextvars.copy_context().run, body, steps)
    future.add_done_callback(lambda _: steps.woken.set())
    stopped = steps.woken.wait(max(0.0, deadline - time.monotonic()))
    if future.done():
        return future.result()
    steps.stop()  # the body ends at its next check; this thread answers now
    if stopped:
        raise concurrent.futures.CancelledError
    raise DeadlinePassedError
