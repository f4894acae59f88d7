"""Submitted batches: main-agent runs enqueued as Celery jobs, tracked in Redis.

`taskforce submit` reads a batch file as `taskforce batch` does and enqueues one job per item on
the main-run queue (`MAIN_QUEUE`), which only main-run workers (`taskforce main-worker`)
consume. Subagent workers never consume it, and main-run workers never consume a subagent
queue, so runs waiting on their delegations hold main-run slots only: however many runs are
submitted, they can never take the slots their subagents need.

Everything about a batch lives under `<prefix>:batch:<id>` for `TASKFORCE_RESULT_EXPIRES`
seconds: each item's state (queued, running, ok, failed, cancelled), its result line, the
rejected input lines, and a cancel flag that queued and running items obey. Each item is also a
record in the ledger, `<batch id>:<item id>`, which leases it to the worker running it
(`orchestrator.batch.leases`); an item whose workers kept dying is a dead letter there, and
counts as `dead_letter` here until `taskforce dead-letters requeue` runs it again.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from orchestrator.batch.input import BatchItem, read_batch
from orchestrator.batch.leases import MAIN_RUN_LABEL
from orchestrator.batch.results import ItemResult
from orchestrator.budgets import NO_BUDGETS, RunBudgets, batch_spent, budgets_to_json
from shared import keys
from shared.budgets import Budget, Spent, require_prices
from shared.celery_app import create_celery_app, publish
from shared.ledger import Kind, Publication, Recording, as_text, open_ledger
from shared.secrets import SecretBox
from shared.settings import Settings

ItemState = Literal["queued", "running", "ok", "failed", "needs_approval", "cancelled", "dead_letter"]
FINAL_ITEM_STATES: frozenset[str] = frozenset({"ok", "failed", "cancelled", "dead_letter"})


class UnknownBatchError(LookupError):
    """A batch id Redis holds nothing for (never submitted, or expired)."""


def main_queue(settings: Settings) -> str:
    return keys.main_runs_queue(settings.queue_prefix)


class BatchRecord:
    """The keys of one submitted batch."""

    def __init__(self, settings: Settings, batch_id: str) -> None:
        self.settings = settings
        self.batch_id = batch_id
        self.ledger = open_ledger(settings)
        self.client = self.ledger.client
        self.meta, self.states, self.results, self.rejected = (
            keys.batch(settings.queue_prefix, batch_id, part)
            for part in ("", "states", "results", "rejected")
        )

    def keep(self) -> None:
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

    def run_id(self, item_id: str) -> str:
        """The item's id in the ledger, which is also its Celery task id."""
        return f"{self.batch_id}:{item_id}"

    def writes(
        self, item_id: str, state: ItemState, result: ItemResult | None = None
    ) -> list[tuple[str, str, str]]:
        """The fields an item's end writes (key, field, value), for the ledger to write along
        with the run's result, and only if the run is still the writer's."""
        fields: list[tuple[str, str, str]] = [(self.states, item_id, state)]
        if result is not None:
            fields.append((self.results, result.id, result.model_dump_json()))
        return fields

    def dead_letters(self, item_ids: Sequence[str]) -> dict[str, str]:
        """Of these items, those parked as dead letters in the ledger, with the reason."""
        reasons = self.ledger.dead_letter_reasons([self.run_id(item_id) for item_id in item_ids])
        return {
            item_id: reasons[self.run_id(item_id)] for item_id in item_ids if self.run_id(item_id) in reasons
        }

    def item_states(self) -> dict[str, str]:
        """Each item's state, a dead letter's as `dead_letter`: the worker running it died too
        often to write any."""
        states = self._states()
        return states | dict.fromkeys(self.dead_letters(_unfinished(states)), "dead_letter")

    def unfinished(self) -> list[str]:
        """Items whose run has written no end (queued, running, or parked as a dead letter)."""
        return _unfinished(self._states())

    def _states(self) -> dict[str, str]:
        return {as_text(item): as_text(state) for item, state in self.client.hgetall(self.states).items()}


def _unfinished(states: dict[str, str]) -> list[str]:
    return [item for item, state in states.items() if state in ("queued", "running")]


@dataclass(frozen=True)
class Submission:
    batch_id: str
    queued: int
    rejected: list[str]


def _payload(
    item: BatchItem, batch_id: str, box: SecretBox, max_delegations: int, budgets: RunBudgets
) -> dict[str, Any]:
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
    record.keep()
    recordings = [
        _recording(settings, record, _payload(item, batch_id, box, max_delegations, budgets))
        for item in batch.items
    ]
    states = record.ledger.record(recordings)
    app = create_celery_app(settings)
    try:
        # An item recorded before (the same batch id submitted again) keeps its run.
        publish(app, [r.publication for r, state in zip(recordings, states, strict=True) if state is None])
    finally:
        app.close()
    return Submission(batch_id, len(batch.items), batch.rejected)


def _recording(settings: Settings, record: BatchRecord, payload: dict[str, Any]) -> Recording:
    run_id = record.run_id(str(payload["id"]))
    shown = repr([{"batch": record.batch_id, "id": payload["id"], "prompt": str(payload["prompt"])[:80]}])
    publication = Publication(
        run_id, json.dumps(payload), shown, main_queue(settings), Kind.MAIN_RUN, message=payload
    )
    return Recording(
        publication,
        subagent_type=MAIN_RUN_LABEL,
        reply_to="",  # nobody waits: the batch record holds the result
        max_attempts=settings.max_attempts,
        guard_s=settings.queue_timeout,
        ttl_s=settings.result_expires,
    )


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
    for state in record.item_states().values():
        counts[state] = counts.get(state, 0) + 1
    total = int(record.client.hget(record.meta, "total") or 0)
    rejected = [as_text(line) for line in record.client.lrange(record.rejected, 0, -1)]
    given = record.client.hget(record.meta, "budget")
    budget = Budget.model_validate_json(given) if given is not None else None
    spent = batch_spent(settings, batch_id) if budget is not None else None
    return BatchStatus(batch_id, total, counts, rejected, record.cancelled(), budget, spent)


def batch_results(settings: Settings, batch_id: str) -> list[ItemResult]:
    """The results so far, in no particular order; a dead letter's says why it has none."""
    record = _existing(settings, batch_id)
    results = [ItemResult.model_validate_json(line) for line in record.client.hvals(record.results)]
    for item_id, reason in record.dead_letters(record.unfinished()).items():
        thread_id = f"{record.run_id(item_id)}:1"
        results.append(ItemResult(id=item_id, status="failed", thread_id=thread_id, attempt=1, error=reason))
    return results


def cancel_batch(settings: Settings, batch_id: str) -> None:
    """Queued items are dropped when a worker takes them; running ones stop within a second,
    their delegations cancelled."""
    record = _existing(settings, batch_id)
    record.client.hset(record.meta, "cancelled", 1)
    states = record.client.hgetall(record.states)
    queued = [item_id for item_id, state in states.items() if state == b"queued"]
    if queued:
        record.client.hset(record.states, mapping=dict.fromkeys(queued, "cancelled"))
