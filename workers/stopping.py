"""How a prefork child learns that its worker is stopping, so that it hands its delegations back
after the grace period instead of dying with them or running them to the end.

Celery tells only the main process (`worker_shutting_down`), and resets SIGTERM in its children
to the default, which kills a child at once: a worker stopped through its process group (systemd,
`kill -- -pgid`) lost its children's delegations as if it had crashed, each an attempt gone; one
stopped through its main process alone (`docker stop`) ran them to the end however long that
took. So the main process passes the word on to each child (`HAND_BACK_SIGNAL`), and a child
treats its first SIGTERM the same way; a second SIGTERM stops it at once, as Celery's cold
shutdown expects.

A signal handler may interrupt the child's main thread anywhere, locks held included, so it only
writes a byte to a pipe; a thread of its own does the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from billiard.process import active_children

HAND_BACK_SIGNAL = signal.SIGUSR2


def ignore_hand_back() -> None:
    """In a new prefork child: nothing runs here yet, so there is nothing to hand back."""
    signal.signal(HAND_BACK_SIGNAL, signal.SIG_IGN)


def leave_on_stop(leave: Callable[[], None]) -> None:
    """In a prefork child about to run its first delegation (billiard has set its own SIGTERM
    handler by then, which this keeps for the second one): call `leave` once, on the first
    SIGTERM or `HAND_BACK_SIGNAL`. Off a main thread (no prefork child runs tasks there) signals
    cannot be handled, and it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # a flood of signals must not block the handler
    exit_on_sigterm = signal.getsignal(signal.SIGTERM)

    def watch() -> None:
        os.read(read_end, 1)
        leave()

    def on_signal(signum: int, _: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, exit_on_sigterm)
        with contextlib.suppress(BlockingIOError):
            os.write(write_end, b"!")

    threading.Thread(target=watch, name="taskforce-stop-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(HAND_BACK_SIGNAL, on_signal)


def pass_on_stop() -> None:
    """In the main process: tell each prefork child that the worker is stopping."""
    for child in active_children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, HAND_BACK_SIGNAL)
