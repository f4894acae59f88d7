"""`run_batch`: one main-agent run per line of a batch file, a few at a time, resumable.

Each item runs on its own checkpointed thread, `<batch id>:<item id>:<attempt>`, the batch id
derived from the results file, so rerunning with the same results file finds every thread
again. What a rerun does with an item depends on what the last run left:

- a line with status `ok` in the results file: skipped;
- a line with status `failed`: run again from the start on a fresh thread (the next attempt);
- a line with status `needs_approval` (a subagent waits for a person to approve an action):
  its thread resumes; once someone answered with `taskforce run --resume <thread_id>`, the
  answer is taken, else the item stays parked;
- no line (the batch was killed or interrupted while it ran): its thread resumes from its last
  checkpoint; `task` calls already answered are not sent again, and delegations still out are
  re-attached to (in connected mode their records outlive the batch process) or, where Redis
  lost them (the embedded Redis dies with its batch), sent again.

Two caps keep one batch from flooding a shared pool: runs at once (`max_runs`) and delegations
in flight per run (`max_delegations`; a run's further `task` calls wait for a free slot).
Ctrl-C stops at once without cancelling: running items are detached, keep no line, and resume
on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from orchestrator.agent import create_orchestrator
from orchestrator.approvals import describe
from orchestrator.batch.input import BatchItem, read_batch
from orchestrator.batch.results import DelegationSummary, ItemResult, ResultsFile
from orchestrator.budgets import BATCH_ID_KEY, ITEM_ID_KEY, NO_BUDGETS, RunBudgets, batch_spent
from orchestrator.checkpoints import open_checkpointer
from orchestrator.delegation.client import DelegationClient, DetachedError
from orchestrator.session import reports_in
from shared.bound import bound
from shared.budgets import Budget, Spent
from shared.celery_app import create_celery_app
from shared.errors import error_text
from shared.ledger import Ledger, open_ledger
from shared.schemas import Report, TokenUsage
from shared.settings import Settings

DEFAULT_MAX_RUNS = 4
DEFAULT_MAX_DELEGATIONS = 8
KEPT_AGENTS = 8
"""Main agents an ItemRunner keeps built, one per pair of budgets its items came with."""


def batch_id_for(results: Path) -> str:
    """Stable for one results file wherever the batch is started from."""
    digest = hashlib.sha256(str(results.resolve()).encode()).hexdigest()[:10]
    stem = re.sub(r"[^\w.-]+", "-", results.stem)[:40] or "batch"
    return f"batch-{stem}-{digest}"


@dataclass
class BatchProgress:
    """Counts a display may read at any time from another thread."""

    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    waiting: int = 0
    running: int = 0
    started: float = field(default_factory=time.monotonic)
    _clients: set[DelegationClient] = field(default_factory=set, repr=False)
    _stopping: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def in_flight(self) -> int:
        with self._lock:
            clients = list(self._clients)
        return sum(client.outstanding for client in clients)

    def rate(self) -> float:
        """Items finished per second in this run."""
        elapsed = time.monotonic() - self.started
        return (self.done + self.failed) / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        left = self.total - self.skipped - self.done - self.failed
        rate = self.rate()
        return left / rate if rate > 0 else None

    def _running(self, client: DelegationClient) -> None:
        with self._lock:
            if self._stopping:
                raise DetachedError("the batch is stopping")
            self._clients.add(client)
            self.running += 1

    def _finished(self, client: DelegationClient, result: ItemResult | None) -> None:
        with self._lock:
            self._clients.discard(client)
            self.running -= 1
            if result is not None:
                self.done += result.status == "ok"
                self.failed += result.status == "failed"
                self.waiting += result.status == "needs_approval"

    def _detach_all(self) -> None:
        with self._lock:
            self._stopping = True
            clients = list(self._clients)
        for client in clients:
            client.detach()


@dataclass
class BatchOutcome:
    batch_id: str
    results: list[ItemResult]
    """This run's items, in the order they finished."""
    skipped: int
    rejected: list[str]
    elapsed_s: float
    budget: Budget | None = None
    spent: Spent | None = None
    """What the batch's budget has spent, this run and earlier runs of the batch together."""

    @property
    def failed(self) -> list[ItemResult]:
        return [result for result in self.results if result.status == "failed"]

    @property
    def waiting(self) -> list[ItemResult]:
        """Parked until a person approves what one of their subagents is about to do."""
        return [result for result in self.results if result.status == "needs_approval"]


def _answered(values: dict[str, Any]) -> bool:
    messages = values.get("messages") or []
    return bool(messages) and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls


def _failure_reason(reports: list[Report]) -> str | None:
    failed = [
        f"{report.subagent_type} {report.status}: {report.summary[:200]}"
        for report in reports
        if report.status != "ok"
    ]
    return "; ".join(failed) or None


_item_client: ContextVar[DelegationClient] = ContextVar("taskforce_item_client")


class _ItemClients:
    """The DelegationClient an ItemRunner's one main agent is built with, standing in for the
    client of whichever item's run calls it. Each item keeps a client of its own, for what is
    per item: its cap on delegations in flight, what progress counts as its in flight, closing
    it (which cancels what the item left out) and detaching or interrupting it alone. The
    middleware keeps the client it was built with, so the run's client is found in the context:
    LangGraph copies it into the threads that run nodes and tool calls, as `asyncio.to_thread`
    does. `settings` and `ledger` are read when the agent is built, outside any run; the ledger's
    Redis client is thread-safe and the same Redis as every item client's."""

    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger

    def __getattr__(self, name: str) -> Any:
        try:
            client = _item_client.get()
        except LookupError:
            raise RuntimeError(f"DelegationClient.{name} used outside a batch item's run") from None
        return getattr(client, name)


def _running_with(client: DelegationClient) -> contextlib.AbstractContextManager[DelegationClient]:
    return bound(_item_client, client)


class ItemRunner:
    """Runs one item to its result line; shared by `run_batch` and the main-run workers, one
    per process (its Celery app, checkpointer and main agents serve every item)."""

    def __init__(
        self,
        settings: Settings,
        checkpointer: BaseCheckpointSaver[str],
        progress: BatchProgress,
    ) -> None:
        self.settings = settings
        self.app = create_celery_app(settings)
        self.checkpointer = checkpointer
        self.progress = progress
        self._clients = _ItemClients(settings, open_ledger(settings))
        self._agents: dict[RunBudgets, CompiledStateGraph[Any, Any, Any, Any]] = {}
        self._building = threading.Lock()

    def __call__(
        self,
        item: BatchItem,
        attempt: int,
        *,
        batch_id: str,
        max_delegations: int,
        on_client: Callable[[DelegationClient], None] | None = None,
        budgets: RunBudgets = NO_BUDGETS,
    ) -> ItemResult:
        """`on_client` receives the run's client, for whoever may have to stop it; `budgets`
        are what the item and its batch may spend."""
        thread_id = f"{batch_id}:{item.id}:{attempt}"
        client = DelegationClient(self.app, self.settings, max_in_flight=max_delegations)
        if on_client is not None:
            on_client(client)
        started = time.monotonic()
        try:
            self.progress._running(client)
        except DetachedError:
            client.close()
            raise
        result: ItemResult | None = None
        try:
            state = self._run(item, thread_id, client, batch_id, budgets)
            messages: list[BaseMessage] = state.get("messages", [])
            reports = reports_in(messages)
            reason = _failure_reason(reports)
            main_usage = TokenUsage.of_messages([m for m in messages if isinstance(m, AIMessage)])
            questions = state.get("__interrupt__")
            if questions:
                # Parked: its thread keeps the question; a person answers it with `taskforce run
                # --resume <thread_id>`, and the next run of the batch picks the answer up.
                reason = f"waits for {describe(questions)}; answer with: taskforce run --resume {thread_id}"
            result = ItemResult(
                id=item.id,
                status="needs_approval" if questions else "failed" if reason else "ok",
                thread_id=thread_id,
                attempt=attempt,
                answer=messages[-1].text if messages else "",
                error=reason,
                delegations=[DelegationSummary.of(report) for report in reports],
                usage=sum((report.usage for report in reports), main_usage),
                duration_s=time.monotonic() - started,
            )
        except DetachedError:
            raise
        except Exception as error:  # one item's failure is its result, never the batch's
            result = ItemResult(
                id=item.id,
                status="failed",
                thread_id=thread_id,
                attempt=attempt,
                error=error_text(error),
                duration_s=time.monotonic() - started,
            )
        finally:
            self.progress._finished(client, result)
            client.close()
        return result

    def _run(
        self, item: BatchItem, thread_id: str, client: DelegationClient, batch_id: str, budgets: RunBudgets
    ) -> dict[str, Any]:
        """The item's state once it has an answer or a question: from its checkpoint if it got
        one before a kill, by resuming its thread if it was cut short, else from its prompt.
        Its runs, and its subagents' on the workers, carry the batch and item ids in LangSmith.
        Reading the thread first is the only checkpoint work beyond `invoke`'s own (one indexed
        read, nothing to build for a new thread): no other record says whether a kill left
        the item a thread to resume, since a killed batch writes no line for it."""
        agent = self._agent(budgets)
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "metadata": {BATCH_ID_KEY: batch_id, ITEM_ID_KEY: item.id},
        }
        snapshot = agent.get_state(config)
        with _running_with(client):
            if _answered(snapshot.values) and not snapshot.next:
                state = snapshot.values  # it finished before the kill, and wrote no line
            elif snapshot.next:
                state = agent.invoke(None, config, context=item.context, durability="sync")
            else:
                if snapshot.values:
                    # Killed before its first step was checkpointed: only the input got in, with
                    # nothing to resume, and a new input would be added to it.
                    self.checkpointer.delete_thread(thread_id)
                fresh = {"messages": [HumanMessage(content=item.prompt)]}
                state = agent.invoke(fresh, config, context=item.context, durability="sync")
        return dict(state)

    def _agent(self, budgets: RunBudgets) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The main agent for items with these budgets, built on first use and run by every
        such item at once: a build (deepagents' middleware, the graph's compilation) costs CPU
        that every item would pay again, and nothing of one run is bound into it (the run's
        client, thread, context and ids come with the run).
        The budgets are bound at build; a batch has one pair, a main-run worker one per batch, so
        it keeps the last KEPT_AGENTS pairs' agents rather than one for every batch it ever ran."""
        with self._building:
            agent = self._agents.get(budgets)
            if agent is None:
                if len(self._agents) >= KEPT_AGENTS:
                    del self._agents[next(iter(self._agents))]
                agent = self._agents[budgets] = create_orchestrator(
                    settings=self.settings,
                    client=cast(DelegationClient, self._clients),
                    checkpointer=self.checkpointer,
                    budget=budgets.run,
                    batch_budget=budgets.batch,
                )
        return agent


def run_batch(
    settings: Settings,
    input_path: Path,
    results_path: Path,
    *,
    max_runs: int = DEFAULT_MAX_RUNS,
    max_delegations: int = DEFAULT_MAX_DELEGATIONS,
    progress: BatchProgress | None = None,
    on_result: Callable[[ItemResult], None] | None = None,
    budgets: RunBudgets = NO_BUDGETS,
) -> BatchOutcome:
    """Run every item of `input_path` not yet `ok` in `results_path`; see the module docstring.
    `budgets`: what each item and the whole batch may spend. Raises KeyboardInterrupt after
    detaching the running items if interrupted."""
    batch = read_batch(input_path)
    results = ResultsFile(results_path)
    batch_id = batch_id_for(results_path)
    progress = progress or BatchProgress()
    todo = [item for item in batch.items if not results.done(item.id)]
    progress.total = len(batch.items)
    progress.skipped = len(batch.items) - len(todo)
    finished: list[ItemResult] = []
    started = time.monotonic()
    with open_checkpointer(settings) as checkpointer:
        run_item = ItemRunner(settings, checkpointer, progress)
        pool = ThreadPoolExecutor(max_runs, thread_name_prefix="taskforce-batch")
        pending: set[Future[ItemResult]] = {
            pool.submit(
                run_item,
                item,
                results.next_attempt(item.id),
                batch_id=batch_id,
                max_delegations=max_delegations,
                budgets=budgets,
            )
            for item in todo
        }
        try:
            while pending:
                completed, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in completed:
                    result = future.result()
                    results.append(result)
                    finished.append(result)
                    if on_result is not None:
                        on_result(result)
        except BaseException:
            # Ctrl-C, or a results file that cannot be written: stop without cancelling.
            for future in pending:
                future.cancel()
            progress._detach_all()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    results.compact([item.id for item in batch.items])
    spent = batch_spent(settings, batch_id) if budgets.batch is not None else None
    return BatchOutcome(
        batch_id, finished, progress.skipped, batch.rejected, time.monotonic() - started, budgets.batch, spent
    )
