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

LUA_COUNT = """
local function count(key, at, observed)
  local pairs_end = at + 1 + 2 * tonumber(ARGV[at + 1])
  for index = at + 2, pairs_end, 2 do redis.call('HINCRBYFLOAT', key, ARGV[index], ARGV[index + 1]) end
  local sum_field = ARGV[pairs_end + 1]
  if sum_field ~= '' then
    redis.call('HINCRBYFLOAT', key, sum_field, observed)
    for index = pairs_end + 3, pairs_end + 2 + 2 * tonumber(ARGV[pairs_end + 2]), 2 do
      if ARGV[index] == '+Inf' or observed <= tonumber(ARGV[index]) then
        redis.call('HINCRBYFLOAT', key, ARGV[index + 1], 1)
        break
      end
    end
  end
  redis.call('EXPIRE', key, ARGV[at])
end
"""
"""Counts into the hash `key` from `ARGV[at]` on (`Counting.args`): its TTL, increments, and
optionally one histogram observation of `observed`, a value only the calling script knows (the
time a claimed delegation waited). Part of the ledger's claim and report scripts, so that a
delegation's count and its record change in one round trip, and a change that does not happen
(a message whose delegation runs elsewhere, a report that came too late) is not counted."""
_ADD = LUA_COUNT + "count(KEYS[1], 1, 0)"
"""One script call rather than a pipeline of a command per field: a pipeline's packing and
parsing cost the worker more than the count."""
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


@dataclass(frozen=True)
class Counting:
    """What `LUA_COUNT` adds, and where: given to a ledger script with its own keys and arguments."""

    key: str
    args: tuple[str | float, ...]


def _counting(
    key: str, increments: Mapping[str, float], observed: tuple[Family, tuple[str, ...]] | None = None
) -> Counting:
    """`observed`: the histogram the script observes its value into; its count is counted here,
    its sum and bucket by the script (as `_observed` does them where the value is known)."""
    if observed is not None:
        increments = {**increments, field_name(*observed, "count"): 1.0}
    args: list[str | float] = [COUNTS_TTL_S, len(increments)]
    for field, amount in increments.items():
        args += (field, amount)
    if observed is None:
        return Counting(key, (*args, "", 0))
    family, labels = observed
    args += (field_name(family, labels, "sum"), len(family.buckets))
    for bound in family.buckets:
        args += (bucket_bound(bound), field_name(family, labels, bucket_bound(bound)))
    return Counting(key, tuple(args))


class ProcessCounts:
    """Counts what one process did with delegations and main runs. A claim's and a report's
    counts go into the ledger scripts that make them (`started`, `finished`), one round trip
    fewer for each; the rest are counted on their own, where a metric is never worth a
    delegation: Redis failing there costs the count, and is logged."""

    def __init__(self, client: redis.Redis, prefix: str, process: str) -> None:
        self._key = metrics_key(prefix, process)
        self._script = client.register_script(_ADD)

    def started(self, subagent: str) -> Counting:
        """A claim's counts, for the claim script, which observes how long it waited."""
        return _counting(self._key, {field_name(STARTED, [subagent]): 1.0}, (WAIT, (subagent,)))

    def finished(self, report: Report) -> Counting:
        """A report's counts, for the script that stores it."""
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
        return _counting(self._key, increments)

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
        try:
            self._script(keys=[self._key], args=list(_counting(self._key, increments).args))
        except redis.RedisError as error:
            logger.warning("could not count a delegation in %s: %s", self._key, error)
