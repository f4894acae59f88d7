"""A prefork child's side of stopping a worker (`workers.stopping`), in this process."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from tests.support.waiting import eventually
from workers.stopping import HAND_BACK_SIGNAL, ignore_hand_back, leave_on_stop


@pytest.fixture(autouse=True)
def _handlers_restored() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, HAND_BACK_SIGNAL)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_first_stop_signal_leaves_once_and_a_second_sigterm_reaches_the_old_handler() -> None:
    exits: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: exits.append(signum))  # billiard's, in a child
    leaves: list[str] = []
    left = threading.Event()

    def leave() -> None:
        leaves.append(threading.current_thread().name)
        left.set()

    leave_on_stop(leave)
    os.kill(os.getpid(), HAND_BACK_SIGNAL)
    assert left.wait(5)
    os.kill(os.getpid(), signal.SIGTERM)  # the process group's: leaving already, nothing more
    assert exits == []
    os.kill(os.getpid(), signal.SIGTERM)  # a second one: exit, as Celery's cold shutdown expects
    assert eventually(lambda: exits == [signal.SIGTERM])
    assert leaves == ["taskforce-stop-watch"], "left once, off the signal handler"


def test_a_child_with_nothing_running_ignores_the_word_to_hand_back() -> None:
    ignore_hand_back()
    os.kill(os.getpid(), HAND_BACK_SIGNAL)  # would end this process if it were not ignored
    assert signal.getsignal(HAND_BACK_SIGNAL) == signal.SIG_IGN


def test_off_the_main_thread_nothing_is_taken_over() -> None:
    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=leave_on_stop, args=(lambda: None,))
    worker.start()
    worker.join()
    assert signal.getsignal(signal.SIGTERM) is before
