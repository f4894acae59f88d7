"""Prometheus metrics read from Redis: the counts of `shared.metrics`, and the pool as it is now.

`PoolCollector` is a `prometheus_client` collector: each scrape reads Redis afresh, so what it
shows is never older than the scrape. With a process name it shows that process's counts (a
worker's own endpoint); without, the sum over every process and the live gauges (`taskforce
metrics`): queue depth and the age of the oldest waiting message per queue, the delegations
running (leased) and parked as dead letters per subagent, the live workers per queue.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from shared.ledger import Ledger, as_text
from shared.metrics import COUNTED, Family, bucket_bound, metrics_key

Counts = dict[str, float]


def _read_counts(client: redis.Redis, prefix: str, process: str | None) -> Counts:
    keys = (
        [metrics_key(prefix, process)]
        if process is not None
        else list(client.scan_iter(match=metrics_key(prefix, "*"), count=1000))
    )
    totals: Counts = defaultdict(float)
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        for counts in pipe.execute():
            for field, value in counts.items():
                totals[as_text(field)] += float(value)
    return totals


def _families(counts: Counts) -> Iterator[Metric]:
    parsed: dict[str, list[tuple[list[str], float]]] = defaultdict(list)
    for field, value in counts.items():
        name, *rest = json.loads(field)
        parsed[name].append((rest, value))
    for family in COUNTED:
        rows = parsed.get(family.name, [])
        yield _counter(family, rows) if family.kind == "counter" else _histogram(family, rows)


def _counter(family: Family, rows: list[tuple[list[str], float]]) -> Metric:
    metric = CounterMetricFamily(family.name, family.help, labels=family.labels)
    for labels, value in sorted(rows):
        metric.add_metric(labels, value)
    return metric


def _histogram(family: Family, rows: list[tuple[list[str], float]]) -> Metric:
    metric = HistogramMetricFamily(family.name, family.help, labels=family.labels)
    width = len(family.labels)
    series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for values, value in rows:
        series[tuple(values[:width])][values[width]] = value
    for labels, parts in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for bound in family.buckets:
            cumulative += parts.get(bucket_bound(bound), 0.0)
            buckets.append((bucket_bound(bound), cumulative))
        metric.add_metric(list(labels), buckets, parts.get("sum", 0.0))
    return metric


class PoolCollector(Collector):
    def __init__(
        self,
        ledger: Ledger,
        process: str | None = None,
        *,
        queues: Sequence[str] = (),
        worker_silence_s: float = 30.0,
    ) -> None:
        """`queues` are shown besides those some worker announced: the registry's, whose jobs
        may wait with no worker at all; `worker_silence_s` is how lately a worker must have
        announced a queue to count."""
        self._ledger = ledger
        self._process = process
        self._queues = tuple(queues)
        self._silence_s = worker_silence_s

    def collect(self) -> Iterator[Metric]:
        yield from _families(_read_counts(self._ledger.client, self._ledger.namespace, self._process))
        if self._process is None:
            yield from self._live()

    def _live(self) -> Iterator[Metric]:
        ledger = self._ledger
        now_ms = ledger.server_ms()
        depth = GaugeMetricFamily(
            "taskforce_queue_depth", "Delegation jobs waiting in a queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "taskforce_queue_oldest_age_seconds",
            "How long the oldest job waiting in a queue has waited (0 when none waits).",
            labels=["queue"],
        )
        workers = GaugeMetricFamily(
            "taskforce_workers", "Workers that announced lately that they consume a queue.", labels=["queue"]
        )
        for queue in sorted({*self._queues, *ledger.served_queues()}):
            depth.add_metric([queue], float(ledger.client.llen(queue)))
            queued_ms = ledger.oldest_queued_ms(queue)
            oldest.add_metric(
                [queue], max(0.0, (now_ms - queued_ms) / 1000) if queued_ms is not None else 0.0
            )
            workers.add_metric([queue], float(ledger.serving(queue, self._silence_s)))
        yield from (depth, oldest, workers)
        running = GaugeMetricFamily(
            "taskforce_delegations_running", "Delegations running under a lease now.", labels=["subagent"]
        )
        for subagent, count in sorted(Counter(ledger.running_subagents()).items()):
            running.add_metric([subagent], float(count))
        yield running
        parked = GaugeMetricFamily(
            "taskforce_dead_letters",
            "Dead letters parked now, to be requeued or dropped.",
            labels=["subagent"],
        )
        for subagent, count in sorted(
            Counter(letter.subagent_type for letter in ledger.dead_letters()).items()
        ):
            parked.add_metric([subagent], float(count))
        yield parked


def registry_for(collector: PoolCollector) -> CollectorRegistry:
    """A registry of one `PoolCollector`, to serve or to render with `generate_latest`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
