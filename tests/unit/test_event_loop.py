"""The worker process's one event loop: what provider clients need from it, and what a
delegation needs (its caller's context, cancellation, a waiter that can give up)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time

import httpx
import pytest

from workers.event_loop import LoopStalledError, ProcessLoop

_current_run: contextvars.ContextVar[str] = contextvars.ContextVar("current_run", default="none")


def test_every_call_runs_on_the_same_loop_from_any_thread() -> None:
    process_loop = ProcessLoop()

    async def which() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    loops: list[asyncio.AbstractEventLoop] = []
    threads = [threading.Thread(target=lambda: loops.append(process_loop.run(which()))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(loops) == 8
    assert set(loops) == {process_loop.loop()}
    assert not process_loop.loop().is_closed()


def test_an_async_client_made_once_serves_every_later_call() -> None:
    """What langchain-openai's cached httpx client needs: one loop for all its uses."""
    process_loop = ProcessLoop()
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="ok")))

    async def fetch() -> str:
        return (await client.get("http://provider.test/")).text

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: process_loop.run(fetch()), range(40)))

    assert answers == ["ok"] * 40
    process_loop.run(client.aclose())


def test_the_coroutine_sees_the_callers_context_variables() -> None:
    process_loop = ProcessLoop()

    async def read() -> str:
        return _current_run.get()

    def in_run(run: str) -> str:
        _current_run.set(run)
        return process_loop.run(read())

    assert contextvars.copy_context().run(in_run, "run-7") == "run-7"


def test_on_start_gets_the_task_and_cancelling_it_stops_the_run() -> None:
    process_loop = ProcessLoop()
    tasks: list[asyncio.Task[object]] = []

    def started(task: asyncio.Task[object]) -> None:
        tasks.append(task)
        task.get_loop().call_later(0.05, task.cancel)

    with pytest.raises(concurrent.futures.CancelledError):
        process_loop.run(asyncio.sleep(30), on_start=started)
    assert tasks[0].cancelled()


def test_the_coroutines_own_timeout_error_is_not_taken_for_a_stall() -> None:
    async def times_out() -> None:
        raise TimeoutError("upstream")

    with pytest.raises(TimeoutError, match="upstream"):
        ProcessLoop().run(times_out(), wait_s=5)


def test_a_waiter_gives_up_on_a_blocked_loop() -> None:
    process_loop = ProcessLoop()

    async def blocks() -> None:
        time.sleep(0.6)

    started = time.monotonic()
    with pytest.raises(LoopStalledError, match=r"still running after 0\.1 s"):
        process_loop.run(blocks(), wait_s=0.1)
    assert time.monotonic() - started < 0.5
