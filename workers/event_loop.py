"""The worker process's one event loop, kept for the life of the process.

Every delegation of a worker process runs on this loop, whichever Celery thread took its job.
A loop per delegation, closed after it, breaks the model clients a subagent talks to: provider
integrations keep one async HTTP client per process. langchain-openai caches an
`httpx.AsyncClient` per base URL and timeout with `functools.lru_cache`
(`langchain_openai/chat_models/_client_utils.py`, `_cached_async_httpx_client`), and
langchain-anthropic does the same (`langchain_anthropic/_client_utils.py`,
`_get_default_async_httpx_client`); the worker's compiled subagents keep their model objects
too. An httpx connection pool's connections and locks belong to the loop that first used them:
used from a second loop at the same time they raise "... is bound to a different event loop",
reused after their loop closed they raise "Event loop is closed". On a loop that never closes,
any such client, a provider's or a tool's, serves the thousandth delegation as it served the
first. It is also what deepagents does in-process under `ainvoke`: the main agent and all its
subagents on one loop.

The price is that an async tool which blocks instead of awaiting stalls every delegation of
the process, not only its own; the thread waiting for a delegation still gives up on it at
its deadline plus a grace (`wait_s` below), so the Celery slot is freed and the caller told.
Blocking calls belong in sync tools, which run on the loop's executor threads.

A prefork child makes a loop of its own: the loop's thread does not survive `fork`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

OnStart = Callable[["asyncio.Task[Any]"], None]


class LoopStalledError(Exception):
    """A delegation's coroutine did not finish by the time its waiter stopped waiting, though
    its own deadline should have ended it first: something blocked the loop."""


class DaemonThreadExecutor(ThreadPoolExecutor):
    """Runs blocking calls (sync models and tools) on daemon threads, reused while busy.

    A call the deadline gave up on may never return. ThreadPoolExecutor's threads are joined at
    interpreter exit, so one hung tool would keep the worker from ever stopping; a daemon
    thread ends with the process, and a hung one only costs the pool a thread. Python cannot
    interrupt the call itself. Starting a thread per call instead costs milliseconds a call."""

    IDLE_S = 60.0

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="delegation")
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()

        def call() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        self._calls.put(call)
        if not self._idle.acquire(blocking=False):
            threading.Thread(target=self._serve, name=self._thread_name_prefix, daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self.IDLE_S)
            except queue.Empty:
                if self._idle.acquire(blocking=False):
                    return  # idle, and nobody counts on this thread: leave
                continue  # a call was handed to this thread as idle: it is coming
            call()
            self._idle.release()


class ProcessLoop:
    """Started on first use, in a daemon thread; `run` is called from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop, self._pid = self._started(), os.getpid()
            return self._loop

    @staticmethod
    def _started() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(DaemonThreadExecutor())
        threading.Thread(target=loop.run_forever, name="delegation-loop", daemon=True).start()
        return loop

    def run(
        self,
        coroutine: Coroutine[Any, Any, _T],
        *,
        on_start: OnStart | None = None,
        wait_s: float | None = None,
    ) -> _T:
        """Run `coroutine` on the loop and wait for it here. `on_start` gets its asyncio task,
        on the loop, before it starts (whoever may cancel it). The coroutine sees the caller's
        context variables: the task is created in a copy of the caller's context.

        Raises `concurrent.futures.CancelledError` if the task was cancelled, and
        `LoopStalledError` after `wait_s`, giving up on a task that never ended."""
        future = asyncio.run_coroutine_threadsafe(_bound(coroutine, on_start), self.loop())
        # Waited for apart from `result`, whose own TimeoutError could be the coroutine's.
        if not concurrent.futures.wait([future], timeout=wait_s).done:
            future.cancel()
            raise LoopStalledError(f"still running after {wait_s:g} s")
        return future.result()


async def _bound(coroutine: Coroutine[Any, Any, _T], on_start: OnStart | None) -> _T:
    task = asyncio.current_task()
    if on_start is not None and task is not None:
        on_start(task)
    return await coroutine
