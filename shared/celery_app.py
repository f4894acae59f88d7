"""The Celery app both sides share, configured for long-running delegations.

The orchestrator only ever sends by task *name*; the worker side registers the task. Neither
imports the other. Reports do not travel through Celery's result backend: workers store them in
the delegation's record and push them to the waiting orchestrator (`shared.ledger`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu.entity import Exchange, Queue
from kombu.exceptions import BatchPublishError, OperationalError
from kombu.messaging import Producer
from redis.exceptions import RedisError

from shared import keys
from shared.ledger import Kind, Publication
from shared.schemas import Limits
from shared.settings import Settings
from shared.timing import OUTAGE_POLL_S, outage_retries, timing

RUN_DELEGATION = "taskforce.run_delegation"
RUN_MAIN = "taskforce.run_main"
# What a lost connection to Redis looks like from redis-py, kombu and the socket layer.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (RedisError, OperationalError, OSError)
# A batch of messages that failed on the way: some may have been delivered.
_UNCERTAIN_BATCH: tuple[type[Exception], ...] = (BatchPublishError, *CONNECTION_ERRORS)


class BrokerConfigError(ValueError):
    """No Redis to talk to."""


def queue_for(settings: Settings, subagent_type: str) -> str:
    """Each subagent type has its own queue, so pools can be sized and placed per type."""
    return keys.subagent_queue(settings.queue_prefix, subagent_type)


def queue_named(name: str) -> Queue:
    """The queue with its own exchange and routing key, declared the same way by the side that
    sends and the side that consumes, so a job can only land where its subagent type is served."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


def delegation_queue(settings: Settings, subagent_type: str) -> Queue:
    return queue_named(queue_for(settings, subagent_type))


def publish(app: Celery, publications: Sequence[Publication]) -> None:
    """Send delegations' messages, the first time or again after their worker died, in one
    round trip: kombu's producer batch pipelines the queue pushes and Celery's task-sent events,
    so a model turn that delegates a hundred times costs Redis one exchange, not three hundred.
    A message expires when its queue timeout passes, so a job nobody waits for any more never
    runs.

    A batch Redis dropped halfway may have delivered some of its messages: each is sent again on
    its own, riding out the outage with Celery's publish retries. A message that arrives twice
    runs once, since a worker runs only the delegation it claims in the ledger."""
    if not publications:
        return
    try:
        with app.producer_or_acquire() as producer, producer.batch():
            for publication in publications:
                _send(app, publication, producer)
    except _UNCERTAIN_BATCH:
        for publication in publications:
            _send(app, publication, None)


def _send(app: Celery, publication: Publication, producer: Producer | None) -> None:
    payload = publication.message if publication.message is not None else json.loads(publication.payload)
    app.send_task(
        RUN_MAIN if publication.kind == Kind.MAIN_RUN else RUN_DELEGATION,
        args=[payload],
        task_id=publication.delegation_id,
        queue=queue_named(publication.queue),
        producer=producer,
        # What Flower and worker logs display: the message minus secret values.
        argsrepr=publication.shown,
        kwargsrepr="{}",
        **_time_limits(publication, payload),
    )


def _time_limits(publication: Publication, payload: dict[str, Any]) -> dict[str, float]:
    """Time limits come with each delegation, from its own `Limits`. The app sets none, and a
    main run has none: it lasts as long as its delegations, and each of those has its own."""
    if publication.kind == Kind.MAIN_RUN:
        return {}
    limits = timing(publication.limits or Limits.model_validate(payload["limits"]))
    return {
        "expires": limits.queue_timeout_s,
        "soft_time_limit": limits.soft_limit_s,
        "time_limit": limits.hard_limit_s,
    }


def create_celery_app(settings: Settings) -> Celery:
    if settings.redis_url is None:
        raise BrokerConfigError(
            "no Redis configured: set TASKFORCE_REDIS_URL (e.g. redis://localhost:6379/0), "
            "or use the `taskforce` CLI, which starts a private Redis when it is unset"
        )
    app = Celery("taskforce", broker=settings.redis_url, set_as_current=False)
    limits = timing(settings.limits(recursion_limit=1))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # A message is acknowledged once its delegation has finished, so one a worker took but
        # never claimed is not lost; liveness itself comes from the delegation's lease.
        task_acks_late=True,
        # One job per free slot: prefetching would park short jobs behind a long one.
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": limits.visibility_timeout_s},
        task_ignore_result=True,
        # Publishing rides out a Redis restart or failover of up to `redis_outage` seconds.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": outage_retries(settings.redis_outage),
            "interval_start": OUTAGE_POLL_S,
            "interval_step": 0,
            "interval_max": OUTAGE_POLL_S,
        },
        # Flower reads these events, and nothing else does: off, a delegation costs two
        # messages less (`TASKFORCE_TASK_EVENTS`).
        worker_send_task_events=settings.task_events,
        task_send_sent_event=settings.task_events,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue_for(settings, "default"),
        worker_hijack_root_logger=False,
    )
    return app


WORKER_APP = "workers.app"


def worker_command(*celery_args: str, app: str = WORKER_APP) -> list[str]:
    """The command line of one worker process; `taskforce worker` and the embedded mode both
    start workers this way, so the worker side is never imported into the orchestrator.
    `app` names another Celery app module, such as the main-run worker's."""
    return _celery_command("worker", *celery_args, app=app)


def flower_command(*flower_args: str) -> list[str]:
    """Flower loads the worker app too (its task names and queues), so it is started the same
    way as a worker; through `shared.flower_server`, so its metrics are behind its auth."""
    return _celery_command("flower", *flower_args, module="shared.flower_server")


def _celery_command(subcommand: str, *args: str, app: str = WORKER_APP, module: str = "celery") -> list[str]:
    return [sys.executable, "-m", module, "-A", app, subcommand, *args]


def unique_worker_name(prefix: str) -> str:
    """A node name no other worker has: Celery's `%h` tells hosts (and containers) apart, the
    pid tells processes on one host apart. Two workers with one name hide each other in Flower
    and in `ping` replies, and reports could not say which one ran a delegation."""
    return f"{prefix}.{os.getpid()}@%h"
