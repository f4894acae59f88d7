"""The main-run worker: `celery -A orchestrator.batch.main_runs worker` (which `taskforce main-worker`
runs) takes submitted main-agent runs off the main-run queue and runs each as `taskforce batch`
runs an item, checkpointed, its result stored with its batch in Redis.

This is the orchestrator side in a worker process: it sends delegations to subagent workers
and waits for them like any main agent. It consumes the main-run queue only (see
`orchestrator.batch.submissions` for why that keeps runs from starving their own subagents).

Each run is claimed and leased in the ledger (`orchestrator.batch.leases`): a message that
comes twice runs once, and the run of a main-run worker that is killed goes to another within a
lease and a refresh, where it resumes from its checkpoint, re-attaching to its delegations
(finished ones are answered from the checkpoint, never sent again); across machines that needs
the checkpoints in PostgreSQL (`TASKFORCE_DATABASE_URL`). A worker stopped warmly gives its runs
`TASKFORCE_WORKER_SHUTDOWN_GRACE` seconds to finish, then hands the rest back to the queue, where
another worker resumes each from its checkpoint with its attempt not spent (in the default
threads pool; a prefork child dies with its worker, and its runs are handed over when their
leases lapse).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from functools import cache
from typing import Any

from celery import signals

from orchestrator.batch.input import BatchItem
from orchestrator.batch.leases import MainRun, MainRunKeeper
from orchestrator.batch.results import ItemResult
from orchestrator.batch.run import BatchProgress, ItemRunner
from orchestrator.batch.submissions import BatchRecord, main_queue
from orchestrator.budgets import budgets_from_json
from orchestrator.checkpoints import open_checkpointer
from orchestrator.delegation.client import DetachedError
from shared.celery_app import RUN_MAIN, create_celery_app, queue_named
from shared.errors import error_text
from shared.ledger import Ledger, open_ledger
from shared.metrics_endpoint import serve_process_metrics
from shared.secrets import SecretBox
from shared.settings import Settings

logger = logging.getLogger(__name__)

CANCEL_CHECK_S = 1.0

settings = Settings()
app = create_celery_app(settings)
app.conf.task_queues = [queue_named(main_queue(settings))]
box = SecretBox(settings.secrets_key)
_checkpoints = contextlib.ExitStack()


@cache
def runner() -> ItemRunner:
    """One per process, with its checkpointer opened on first use and closed when the worker
    stops."""
    return ItemRunner(settings, _checkpoints.enter_context(open_checkpointer(settings)), BatchProgress())


@cache
def ledger() -> Ledger:
    return open_ledger(settings)


_keepers: dict[int, MainRunKeeper] = {}


def keeper(worker: str) -> MainRunKeeper:
    """This process's keeper; a prefork child starts its own (threads do not survive a fork)."""
    pid = os.getpid()
    if pid not in _keepers:
        _keepers[pid] = MainRunKeeper(ledger(), app, settings, worker).start()
    return _keepers[pid]


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _serve(sender: Any, **_: Any) -> None:
    """Keep leases (and sweep) from the start, not from the first run."""
    keeper(sender.hostname)
    if settings.metrics_port is not None:
        serve_process_metrics(ledger(), sender.hostname, settings.metrics_port)


@signals.worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _hand_back_after_grace(**_: Any) -> None:
    """A warm shutdown waits for the runs; past the grace period they go back to the queue."""
    running = _keepers.get(os.getpid())
    if running is not None:
        running.shutdown(settings.worker_shutdown_grace)


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _close_checkpoints(**_: Any) -> None:
    _checkpoints.close()


def _item(payload: dict[str, Any]) -> BatchItem:
    sealed = payload.get("context")
    context = json.loads(box.open(sealed).get_secret_value()) if sealed else {}
    return BatchItem(id=payload["id"], prompt=payload["prompt"], context=context)


def _stop_when_cancelled(record: BatchRecord, run: MainRun, done: threading.Event) -> None:
    while not done.wait(CANCEL_CHECK_S):
        if record.cancelled():
            for client in run.clients():
                client.interrupt()
            return


@app.task(name=RUN_MAIN, shared=False, bind=True)  # type: ignore[untyped-decorator]
def run_main(task: Any, payload: dict[str, Any]) -> None:
    leases = keeper(str(task.request.hostname))
    run = leases.claim(str(task.request.id))
    if run is None:
        return  # a second copy of the message, or a run taken over by another worker
    record = BatchRecord(settings, payload["batch_id"])
    item_id = str(payload["id"])
    if record.cancelled():
        leases.finish(run, "", record.writes(item_id, "cancelled"))
        record.keep()
        return
    record.set_state(item_id, "running")
    done = threading.Event()
    watcher = threading.Thread(
        target=_stop_when_cancelled, args=(record, run, done), name="taskforce-cancel-watch", daemon=True
    )
    watcher.start()
    started = time.monotonic()
    try:
        result = runner()(
            _item(payload),
            attempt=1,
            batch_id=record.batch_id,
            max_delegations=int(payload["max_delegations"]),
            on_client=run.watch,
            budgets=budgets_from_json(payload.get("budgets")),
        )
    except DetachedError:
        if run.handed_back:
            leases.requeue(run)  # the worker is stopping: another resumes the run from its checkpoint
            return
        # The lease went to another worker while this one was frozen: that attempt owns the run.
        leases.let_go(run)
        logger.warning("main run %s was taken over by another worker; this attempt stops", run.id)
        return
    except Exception as error:  # an unreadable message is this item's failure, not the worker's
        result = ItemResult(id=item_id, status="failed", thread_id="", attempt=1, error=error_text(error))
    finally:
        done.set()
    stopped = result.status == "failed" and record.cancelled()
    status = "cancelled" if stopped else result.status
    if leases.finish(run, result.model_dump_json(), record.writes(item_id, status, result)):
        record.keep()
        leases.counter.main_run_finished(status, time.monotonic() - started)
