"""`taskforce metrics`: the pool's Prometheus metrics in one scrape, for cron (a node exporter's
textfile collector, say) or, with `--serve`, as a sidecar Prometheus scrapes."""

from __future__ import annotations

import threading

import redis
from prometheus_client import generate_latest, start_http_server
from prometheus_client.registry import CollectorRegistry

from shared.celery_app import BrokerConfigError, queue_for
from shared.ledger import open_ledger
from shared.pool_metrics import PoolCollector, registry_for
from shared.registry import effective_specs, load_registry, queue_name
from shared.settings import Settings
from shared.timing import timing
from shared.urls import mask_url


class MetricsUnavailableError(RuntimeError):
    """Redis, where the metrics live, could not be read."""


def pool_registry(settings: Settings) -> CollectorRegistry:
    # No riding out an outage: a scrape that waits a minute for Redis is worse than one that fails.
    ledger = open_ledger(settings, riding_out_outages=False)
    specs = effective_specs(load_registry(settings.subagents), general_purpose=settings.general_purpose)
    queues = [queue_for(settings, name) for name in dict.fromkeys(map(queue_name, specs))]
    silence_s = timing(settings.limits(recursion_limit=1)).worker_silence_s
    return registry_for(PoolCollector(ledger, queues=queues, worker_silence_s=silence_s))


def scrape(settings: Settings) -> str:
    try:
        return generate_latest(pool_registry(settings)).decode()
    except redis.RedisError as error:
        url = mask_url(settings.redis_url or "")
        raise MetricsUnavailableError(f"could not read the metrics from Redis at {url}: {error}") from None


def serve(settings: Settings, port: int) -> None:
    """Serve until stopped. Redis down answers a scrape with an error, which Prometheus records
    as the target being down, and the next scrape tries again."""
    scrape(settings)  # fail at start, with one line, rather than on every scrape
    try:
        start_http_server(port, registry=pool_registry(settings))
    except OSError as error:
        raise BrokerConfigError(f"cannot serve metrics on port {port}: {error}") from None
    threading.Event().wait()
