"""Submitted batches: main-agent runs enqueued as Celery jobs, tracked in Redis.

`taskforce submit` reads a batch file as `taskforce batch` does and enqueues one job per item on
the main-run queue (`MAIN_QUEUE`), which only main-run workers (`taskforce main-worker`)
consume. Subagent workers never consume it, and main-run workers never consume a subagent
queue, so runs waiting on their delegations hold main-run slots only: however many runs are
submitted, they can never take the slots their subagents need.

Everything about a batch lives under `<prefix>:batch:<id>` for `TASKFORCE_RESULT_EXPIRES`
seconds: each item's state (queued, running, ok, failed, cancelled), its result line, the
rejected input lines, and a cancel flag that queued and running items obey.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from orchestrator.batch_input import BatchItem, read_batch
from orchestrator.batch_results import ItemResult
from orchestrator.budgets import NO_BUDGETS, RunBudgets, batch_spent, budgets_to_json
from shared import keys
from shared.budgets import Budget, Spent, require_prices
from shared.celery_app import create_celery_app, queue_named
from shared.ledger import as_text, open_ledger
from shared.secrets import SecretBox
from shared.settings import Settings

RUN_MAIN = "taskforce.run_main"
ItemState = Literal["queued", "running", "ok", "failed", "needs_approval", "cancelled"]
FINAL_ITEM_STATES: frozenset[str] = frozenset({"ok", "failed", "cancelled"})


class UnknownBatchError(LookupError):
    """A batch id Redis holds nothing for (never submitted, or expired)."""


def main_queue(settings: Settings) -> str:
    return keys.main_runs_queue(settings.queue_prefix)


class BatchRecord:
    """The keys of one submitted batch."""

    def __init__(self, settings: Settings, batch_id: str) -> None:
        self.settings = settings
        self.batch_id = batch_id
        self.client = open_ledger(settings).client
        self.meta, self.states, self.results, self.rejected = (
            keys.batch(settings.queue_prefix, batch_id, part)
            for part in ("", "states", "results", "rejected")
        )

    def _keep(self) -> None:
        for key in (self.meta, self.states, self.results, self.rejected):
            self.client.expire(key, self.settings.result_expires)

    def exists(self) -> bool:
        return bool(self.client.exists(self.meta))

    def cancelled(self) -> bool:
        return self.client.hget(self.meta, "cancelled") == b"1"

    def state(self, item_id: str) -> str | None:
        value = self.client.hget(self.states, item_id)
        return as_text(value) if value is not None else None

    def set_state(self, item_id: str, state: ItemState) -> None:
        self.client.hset(self.states, item_id, state)

    def store(self, result: ItemResult, state: ItemState) -> None:
        with self.client.pipeline() as pipe:
            pipe.hset(self.results, result.id, result.model_dump_json())
            pipe.hset(self.states, result.id, state)
            pipe.execute()
        self._keep()


@dataclass(frozen=True)
class Submission:
    batch_id: str
    queued: int
    rejected: list[str]


def _payload(
    item: BatchItem, batch_id: str, box: SecretBox, max_delegations: int, budgets: RunBudgets
) -> dict[str, object]:
    # The whole context is sealed: main runs pass it on to subagents, and what in it is secret
    # is decided per subagent, on the worker that runs the main agent.
    context = box.seal(SecretStr(json.dumps(item.context))) if item.context else None
    return {
        "batch_id": batch_id,
        "id": item.id,
        "prompt": item.prompt,
        "context": context,
        "max_delegations": max_delegations,
        "budgets": budgets_to_json(budgets),
    }


def submit_batch(
    settings: Settings,
    input_path: Path,
    *,
    batch_id: str | None = None,
    max_delegations: int = 8,
    budgets: RunBudgets = NO_BUDGETS,
) -> Submission:
    """`budgets`: what each item and the whole batch may spend, as `taskforce batch` takes them."""
    require_prices([budgets.run, budgets.batch], settings.model_prices)
    batch = read_batch(input_path)
    box = SecretBox(settings.secrets_key)
    if any(item.context for item in batch.items):
        box.require_key()  # contexts are sealed in the broker message; say so before enqueueing
    batch_id = batch_id or f"batch-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    record = BatchRecord(settings, batch_id)
    record.client.hset(
        record.meta, mapping={"total": len(batch.items), "submitted_at": time.time(), "cancelled": 0}
    )
    if budgets.batch is not None:
        record.client.hset(record.meta, "budget", budgets.batch.model_dump_json())
    if batch.rejected:
        record.client.rpush(record.rejected, *batch.rejected)
    if batch.items:
        record.client.hset(record.states, mapping=dict.fromkeys((item.id for item in batch.items), "queued"))
    record._keep()
    app = create_celery_app(settings)
    queue = queue_named(main_queue(settings))
    try:
        for item in batch.items:
            app.send_task(
                RUN_MAIN,
                args=[_payload(item, batch_id, box, max_delegations, budgets)],
                task_id=f"{batch_id}:{item.id}",
                queue=queue,
                argsrepr=repr([{"batch": batch_id, "id": item.id, "prompt": item.prompt[:80]}]),
                kwargsrepr="{}",
            )
    finally:
        app.close()
    return Submission(batch_id, len(batch.items), batch.rejected)


def _existing(settings: Settings, batch_id: str) -> BatchRecord:
    record = BatchRecord(settings, batch_id)
    if not record.exists():
        raise UnknownBatchError(f"no batch {batch_id!r} in Redis (never submitted, or expired)")
    return record


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    total: int
    counts: dict[str, int]
    rejected: list[str]
    cancelled: bool
    budget: Budget | None = None
    spent: Spent | None = None
    """What the batch's budget has spent so far, when it was submitted with one."""

    @property
    def finished(self) -> bool:
        return sum(self.counts.get(state, 0) for state in FINAL_ITEM_STATES) == self.total


def batch_status(settings: Settings, batch_id: str) -> BatchStatus:
    record = _existing(settings, batch_id)
    counts: dict[str, int] = {}
    for state in map(as_text, record.client.hvals(record.states)):
        counts[state] = counts.get(state, 0) + 1
    total = int(record.client.hget(record.meta, "total") or 0)
    rejected = [as_text(line) for line in record.client.lrange(record.rejected, 0, -1)]
    given = record.client.hget(record.meta, "budget")
    budget = Budget.model_validate_json(given) if given is not None else None
    spent = batch_spent(settings, batch_id) if budget is not None else None
    return BatchStatus(batch_id, total, counts, rejected, record.cancelled(), budget, spent)


def batch_results(settings: Settings, batch_id: str) -> list[ItemResult]:
    """The results so far, in no particular order."""
    record = _existing(settings, batch_id)
    return [ItemResult.model_validate_json(line) for line in record.client.hvals(record.results)]


def cancel_batch(settings: Settings, batch_id: str) -> None:
    """Queued items are dropped when a worker takes them; running ones stop within a second,
    their delegations cancelled."""
    record = _existing(settings, batch_id)
    record.client.hset(record.meta, "cancelled", 1)
    states = record.client.hgetall(record.states)
    queued = [item_id for item_id, state in states.items() if state == b"queued"]
    if queued:
        record.client.hset(record.states, mapping=dict.fromkeys(queued, "cancelled"))
