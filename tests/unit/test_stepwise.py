"""`run_stepwise`: a sync run on its own thread, stopped between steps and given up at its deadline."""

from __future__ import annotations

import concurrent.futures
import contextvars
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from workers.stepwise import DeadlinePassedError, Steps, Stop, run_stepwise

WHO = contextvars.ContextVar("who", default="nobody")


def test_the_body_runs_on_another_thread_in_the_callers_context() -> None:
    WHO.set("caller")

    def body(steps: Steps) -> tuple[str, str]:
        return WHO.get(), threading.current_thread().name

    who, thread = run_stepwise(body, time.monotonic() + 10)

    assert who == "caller"
    assert thread != threading.current_thread().name


def test_what_the_body_raises_reaches_the_caller() -> None:
    def body(steps: Steps) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        run_stepwise(body, time.monotonic() + 10)


def test_a_stop_answers_at_once_and_the_body_ends_at_its_next_check() -> None:
    stops: list[Stop] = []
    in_step = threading.Event()
    release = threading.Event()
    checks_passed: list[int] = []
    ended = threading.Event()

    def body(steps: Steps) -> None:
        try:
            for step in range(100):
                in_step.set()
                release.wait(10)
                steps.check()
                checks_passed.append(step)
        finally:
            ended.set()

    def stop_soon() -> None:
        in_step.wait(10)
        stops[0]()

    threading.Thread(target=stop_soon).start()
    with pytest.raises(concurrent.futures.CancelledError):
        run_stepwise(body, time.monotonic() + 30, stops.append)
    assert not ended.is_set(), "the caller waited for the step to end"

    release.set()
    assert ended.wait(10)
    assert checks_passed == []


def test_a_stop_given_before_the_run_starts_stops_it_at_its_first_check() -> None:
    def stop_now(stop: Stop) -> None:
        stop()

    def body(steps: Steps) -> str:
        steps.check()
        return "ran"

    with pytest.raises(concurrent.futures.CancelledError):
        run_stepwise(body, time.monotonic() + 30, stop_now)


def test_a_hanging_step_is_given_up_at_the_deadline() -> None:
    release = threading.Event()
    checked = threading.Event()

    def body(steps: Steps) -> None:
        release.wait(30)
        checked.set()
        steps.check()

    with pytest.raises(DeadlinePassedError):
        run_stepwise(body, time.monotonic() + 0.2)
    assert not checked.is_set(), "the caller waited for the hanging step"
    release.set()


def test_a_body_past_its_deadline_ends_at_its_next_check() -> None:
    steps_run: list[int] = []

    def body(steps: Steps) -> None:
        for step in range(3):
            steps_run.append(step)
            time.sleep(0.05)
            steps.check()

    with pytest.raises(DeadlinePassedError):
        run_stepwise(body, time.monotonic() + 0.07)
    time.sleep(0.3)
    assert 2 not in steps_run, "the body went on past a check after its deadline"


def test_a_hung_tool_thread_of_a_run_does_not_keep_the_process_from_exiting() -> None:
    """LangGraph runs sync tools on a ThreadPoolExecutor, whose threads Python joins at exit."""
    program = textwrap.dedent(
        """
        import time
        from concurrent.futures import ThreadPoolExecutor
        from workers.stepwise import DeadlinePassedError, run_stepwise

        def body(steps):
            with ThreadPoolExecutor() as pool:
                pool.submit(time.sleep, 120).result()

        try:
            run_stepwise(body, time.monotonic() + 0.2)
        except DeadlinePassedError:
            print("given up")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "given up"
