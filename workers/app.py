"""The worker entry point: `celery -A workers.app worker` (which `taskforce worker` runs).

Everything a worker needs is built once per process from the same settings as the orchestrator
(the same `TASKFORCE_*` variables, or the hand-off of the orchestrator that started it): the
registry, the shared files, the lease keeper and, lazily, the compiled subagents. A message runs
only if its delegation can be claimed (see `shared.ledger`); any other copy is acknowledged and
dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from functools import cache
from typing import Any

from celery import Task, signals

from shared.budgets import Accounts
from shared.celery_app import RUN_DELEGATION, create_celery_app, delegation_queue
from shared.compat import kombu as kombu_compat
from shared.errors import error_text, scrubbed_traceback
from shared.files import SharedFiles, shared_files
from shared.guarded_model import pool_guard
from shared.ledger import Ledger, open_ledger
from shared.metrics_endpoint import serve_process_metrics
from shared.progress import ProgressPublisher
from shared.registry import effective_specs, load_registry, queue_name
from shared.schemas import Delegation, Report
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.stores import open_deployment_store
from shared.timing import timing
from workers import stopping
from workers.conversations import Conversations
from workers.leases import LeaseKeeper
from workers.paused_runs import RedisCheckpointSaver
from workers.runner import Attempt, parse_delegation, run_delegation
from workers.subagents import SubagentCache
from workers.tracing import ParentWatcher

# langchain-core warns about serialising a tool's injected runtime, and the warning text
# contains the runtime context, secrets included, which would land in worker logs.
warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)

logger = logging.getLogger(__name__)

kombu_compat.install()
settings = Settings()
app = create_celery_app(settings)
box = SecretBox(settings.secrets_key)
# Loaded at import, so a bad registry stops the worker at start-up instead of failing every job.
specs = effective_specs(load_registry(settings.subagents), general_purpose=settings.general_purpose)
# By default a worker serves every subagent type; `-Q` narrows a pool to some of them.
app.conf.task_queues = [delegation_queue(settings, name) for name in dict.fromkeys(map(queue_name, specs))]

_keepers: dict[int, LeaseKeeper] = {}


@cache
def files() -> SharedFiles:
    return shared_files(settings)


@cache
def ledger() -> Ledger:
    return open_ledger(settings)


@cache
def subagents() -> SubagentCache:
    # Paused subagents wait on the broker's Redis, which every worker of the deployment reaches;
    # so does the shared store, given to subagents whose main agent has it.
    paused_runs = RedisCheckpointSaver(ledger().client, settings.queue_prefix)
    store = open_deployment_store(settings)
    return SubagentCache(
        specs,
        settings.subagents_default_model,
        files().backend(),
        paused_runs,
        store=store,
        model_arguments=settings.model_arguments,
        guard=pool_guard(settings, lambda: ledger().client),
        files=files(),
    )


@cache
def trace_parents() -> ParentWatcher:
    return ParentWatcher(ledger().client, settings.queue_prefix)


@cache
def accounts() -> Accounts:
    return Accounts.of(ledger().client, settings)


@cache
def conversations() -> Conversations:
    return Conversations(open_ledger(settings).client, settings.queue_prefix, settings.result_expires)


def keeper(worker: str) -> LeaseKeeper:
    """This process's keeper; a prefork child starts its own (threads do not survive a fork).
    `worker` is the Celery node name, which the ledger and reports show."""
    pid = os.getpid()
    if pid not in _keepers:  # only in a prefork child: the main process's starts with the worker
        _keepers[pid] = LeaseKeeper(open_ledger(settings), app, settings, worker).start()
        stopping.leave_on_stop(_leave)
    return _keepers[pid]


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _serve(sender: Any, **_: Any) -> None:
    """Announce the queues this worker consumes, so that a delegation nobody serves fails fast."""
    queues = sorted(sender.app.amqp.queues.consume_from)
    _keepers[os.getpid()] = LeaseKeeper(open_ledger(settings), app, settings, sender.hostname, queues).start()
    if settings.metrics_port is not None:
        serve_process_metrics(ledger(), sender.hostname, settings.metrics_port)


@signals.worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _stop_serving(**_: Any) -> None:
    _leave()
    stopping.pass_on_stop()  # prefork children run delegations under keepers of their own


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _start_child(**_: Any) -> None:
    stopping.ignore_hand_back()


def _leave() -> None:
    """Stop serving and, after the grace period, hand back what still runs in this process."""
    running = _keepers.get(os.getpid())
    if running is not None:
        running.shutdown(settings.worker_shutdown_grace)


def _progress_of(delegation: Delegation) -> ProgressPublisher:
    # Kept as long as the delegation's record, whose report the reader waits for.
    ttl_s = int(timing(delegation.limits).outstanding_s + settings.result_expires)
    return ProgressPublisher(
        ledger().client, settings.queue_prefix, delegation.id, delegation.secret_values(), ttl_s
    )


@app.task(name=RUN_DELEGATION, bind=True, shared=False)  # type: ignore[untyped-decorator]
def run_delegation_task(self: Task[Any, Any], payload: dict[str, Any]) -> None:
    leases = keeper(self.request.hostname or socket.gethostname())
    try:
        delegation = parse_delegation(payload, box)
    except ValueError as error:
        leases.reject(payload, str(error))
        return
    run = leases.claim(delegation)
    if run is None:
        return
    attempt = Attempt(worker=leases.worker, number=run.attempt)
    try:
        report = run_delegation(
            delegation,
            subagents(),
            files().backend(),
            attempt,
            on_stop=run.bind,
            progress=_progress_of,
            conversations=conversations(),
            trace_parents=trace_parents(),
            accounts=accounts(),
        )
    except Exception as error:  # e.g. the shared files or Redis failing around the run itself
        secrets = delegation.secret_values()
        logger.error("delegation %s failed:\n%s", delegation.id, scrubbed_traceback(error, secrets))
        report = Report.failure(
            delegation, "error", error_text(error, secrets), worker=attempt.worker, attempts=attempt.number
        )
    # Always: a claimed delegation left without a report keeps its caller waiting for the
    # attempt's whole budget.
    leases.finish(run, report)
