"""Ctrl-C and SIGTERM cancel a run's delegations at once: the CLI's, kept out of the client, which
a library user may embed in a process whose signals are its own."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from orchestrator.delegation.client import DelegationClient


@contextlib.contextmanager
def cancelled_on_interrupt(client: DelegationClient) -> Iterator[None]:
    """Make Ctrl-C (and SIGTERM) cancel everything `client` sent at once. LangGraph lets running
    tool calls finish before an interrupted `invoke` returns, and a tool call waiting for its
    report would keep it waiting for the delegation's whole run. Works in the main thread;
    elsewhere signals cannot be handled and this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def cancel_then_interrupt(signum: int, frame: FrameType | None) -> None:
        # Not here: the interrupted thread may hold a lock that cancelling needs.
        threading.Thread(target=client.interrupt, name="taskforce-cancel", daemon=True).start()
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)
        elif handler != signal.SIG_IGN:
            raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, cancel_then_interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
