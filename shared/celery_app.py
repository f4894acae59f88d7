"""The Celery app both sides share, configured for long-running delegations.

The orchestrator only ever sends by task *name*; the worker side registers the task. Neither
imports the other.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend
from kombu.entity import Exchange, Queue

from shared.settings import Settings

RUN_DELEGATION = "taskforce.run_delegation"


class BrokerConfigError(ValueError):
    """No Redis to talk to."""


class PollingRedisBackend(RedisBackend):  # type: ignore[misc]
    """The Redis result backend without the pub/sub subscription Celery opens for every task
    it sends. The orchestrator polls for reports instead; the subscriptions would only pile up
    (one per task, per thread) and make sending block for seconds while Redis is away."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


_RESULT_BACKEND = f"{__name__}:{PollingRedisBackend.__name__}"


def queue_for(settings: Settings, subagent_type: str) -> str:
    """Each subagent type has its own queue, so pools can be sized and placed per type."""
    return f"{settings.queue_prefix}.{subagent_type}"


def delegation_queue(settings: Settings, subagent_type: str) -> Queue:
    """The queue with its own exchange and routing key, declared the same way by the side that
    sends and the side that consumes, so a job can only land where its subagent type is served."""
    name = queue_for(settings, subagent_type)
    return Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]


def create_celery_app(settings: Settings) -> Celery:
    if settings.redis_url is None:
        raise BrokerConfigError(
            "no Redis configured: set TASKFORCE_REDIS_URL (e.g. redis://localhost:6379/0), "
            "or use the `taskforce` CLI, which starts a private Redis when it is unset"
        )
    app = Celery(
        "taskforce",
        broker=settings.redis_url,
        backend=f"{_RESULT_BACKEND}+{settings.redis_url}",
        set_as_current=False,
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A delegation is acknowledged only once it has finished, so a worker that dies mid-run
        # hands it back to the queue instead of losing it.
        task_acks_late=True,
        # One job per free slot: prefetching would park short jobs behind a long one.
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_backend_transport_options={"visibility_timeout": settings.visibility_timeout},
        result_expires=settings.result_expires,
        task_track_started=True,
        task_soft_time_limit=settings.delegation_timeout,
        task_time_limit=settings.hard_time_limit,
        # Flower and the CLI's progress view read these events.
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue_for(settings, "default"),
        worker_hijack_root_logger=False,
    )
    return app


WORKER_APP = "workers.app"


def worker_command(*celery_args: str) -> list[str]:
    """The command line of one worker process; `taskforce worker` and the embedded mode both
    start workers this way, so the worker side is never imported into the orchestrator."""
    return [sys.executable, "-m", "celery", "-A", WORKER_APP, "worker", *celery_args]
