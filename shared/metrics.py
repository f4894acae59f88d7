"""Counting delegations for Prometheus, in Redis.

Every process that runs delegations or hands them on counts into a hash of its own,
`<ns>:metrics:<process>`: a worker under its Celery node name (a prefork worker's children
count into their parent's), waiting orchestrators under `callers`. A worker's endpoint shows its
own hash (`shared.metrics_endpoint`), and so does a main-run worker, which counts the main runs
it finished; `taskforce metrics` sums them all and adds what Redis
holds right now (`shared.pool_metrics`). Counting in Redis rather than in process memory is what
lets prefork children share one count and one scrape see the whole pool without reaching each
machine. A hash nobody counted into for `COUNTS_TTL_S` goes, with the worker that wrote it.

Labels are bounded by the deployment (subagent types, statuses, models), never by ids.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import redis

from shared import keys
from shared.schemas import Report

logger = logging.getLogger(__name__)

COUNTS_TTL_S = 7 * 86400

_ADD = """
for index = 2, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[index], ARGV[index + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""
"""One script call rather than a pipeline of a command per field: counting is on every
delegation's path, twice, and a pipeline's packing and parsing cost the worker more than the count."""
CALLERS = "callers"
"""The hash of the waiting orchestrators, which hand on delegations whose worker died."""


@dataclass(frozen=True)
class Family:
    """One metric: `name` as Prometheus shows it, less the `_total` of a counter."""

    name: str
    help: str
    kind: Literal["counter", "histogram"]
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


STARTED = Family("taskforce_delegations_started", "Delegations a worker started.", "counter", ("subagent",))
FINISHED = Family(
    "taskforce_delegations", "Delegations finished, by how they ended.", "counter", ("subagent", "status")
)
DURATION = Family(
    "taskforce_delegation_duration_seconds",
    "Time from a worker starting a delegation to its report.",
    "histogram",
    ("subagent",),
    (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, math.inf),
)
WAIT = Family(
    "taskforce_delegation_wait_seconds",
    "Time a delegation waited in its queue for a worker.",
    "histogram",
    ("subagent",),
    (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, math.inf),
)
TOKENS = Family(
    "taskforce_tokens",
    "Model tokens subagents used, as providers reported them.",
    "counter",
    ("model", "direction"),
)
HANDOVERS = Family(
    "taskforce_lease_handovers",
    "Delegations whose worker went silent, handed to another worker.",
    "counter",
    ("subagent",),
)
DEAD_LETTERED = Family(
    "taskforce_dead_lettered",
    "Delegations parked as dead letters after their last attempt.",
    "counter",
    ("subagent",),
)
MODEL_WAIT = Family(
    "taskforce_model_wait_seconds",
    "Seconds subagents' model calls waited for the pool's model limits, by 'provider:model'.",
    "counter",
    ("model",),
)
PROVIDER_RETRIES = Family(
    "taskforce_provider_retries",
    "Model calls tried again after the provider answered 429 or overloaded, or the connection failed.",
    "counter",
    ("model", "status"),
)
MAIN_RUNS = Family(
    "taskforce_main_runs",
    "Submitted main runs a main-run worker finished, by how they ended.",
    "counter",
    ("status",),
)
MAIN_RUN_DURATION = Family(
    "taskforce_main_run_duration_seconds",
    "Time a main-run worker spent on a submitted main run, delegations included.",
    "histogram",
    (),
    (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, math.inf),
)
COUNTED = (
    STARTED,
    FINISHED,
    DURATION,
    WAIT,
    TOKENS,
    MODEL_WAIT,
    PROVIDER_RETRIES,
    HANDOVERS,
    DEAD_LETTERED,
    MAIN_RUNS,
    MAIN_RUN_DURATION,
)


def metrics_key(prefix: str, process: str) -> str:
    return keys.metrics(prefix, process)


def field_name(family: Family, labels: Iterable[str], part: str = "") -> str:
    """A hash field: the family, its label values and, for a histogram, `sum`, `count` or a
    bucket's upper bound."""
    return json.dumps([family.name, *labels, *([part] if part else [])])


def bucket_bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _observed(family: Family, labels: tuple[str, ...], value: float) -> dict[str, float]:
    """One observation as increments: the bucket it falls in (summed up at reading), sum, count."""
    bound = next(bound for bound in family.buckets if value <= bound)
    return {
        field_name(family, labels, bucket_bound(bound)): 1,
        field_name(family, labels, "sum"): value,
        field_name(family, labels, "count"): 1,
    }


class ProcessCounts:
    """Counts what one process did with delegations and main runs. A metric is never worth a
    delegation: Redis failing here costs the count, and is logged."""

    def __init__(self, client: redis.Redis, prefix: str, process: str) -> None:
        self._key = metrics_key(prefix, process)
        self._script = client.register_script(_ADD)

    def started(self, subagent: str, waited_s: float) -> None:
        self._add({field_name(STARTED, [subagent]): 1.0, **_observed(WAIT, (subagent,), max(0.0, waited_s))})

    def finished(self, report: Report) -> None:
        subagent = report.subagent_type
        increments = {field_name(FINISHED, [subagent, report.status]): 1.0}
        increments |= _observed(DURATION, (subagent,), report.duration_s)
        for model, usage in report.usage_by_model.items():
            for direction, tokens in (("input", usage.input_tokens), ("output", usage.output_tokens)):
                if tokens:
                    increments[field_name(TOKENS, [model, direction])] = float(tokens)
        for model, seconds in report.model_wait_s.items():
            increments[field_name(MODEL_WAIT, [model])] = seconds
        for retry in report.provider_retries:
            increments[field_name(PROVIDER_RETRIES, [retry.model, retry.status])] = float(retry.count)
        self._add(increments)

    def handed_over(self, subagent: str) -> None:
        self._add({field_name(HANDOVERS, [subagent]): 1.0})

    def dead_lettered(self, subagent: str) -> None:
        """A dead letter is also how its delegation ended."""
        self._add(
            {field_name(DEAD_LETTERED, [subagent]): 1.0, field_name(FINISHED, [subagent, "dead_letter"]): 1.0}
        )

    def main_run_finished(self, status: str, duration_s: float) -> None:
        self._add({field_name(MAIN_RUNS, [status]): 1.0, **_observed(MAIN_RUN_DURATION, (), duration_s)})

    def _add(self, increments: Mapping[str, float]) -> None:
        arguments: list[str | float] = [COUNTS_TTL_S]
        for field, amount in increments.items():
            arguments += (field, amount)
        try:
            self._script(keys=[self._key], args=arguments)
        except redis.RedisError as error:
            logger.warning("could not count a delegation in %s: %s", self._key, error)
