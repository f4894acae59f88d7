"""The pool limiter's scripts against a real Redis: each cap admits exactly its share, a freed or
expired slot comes back, a 429 pauses and shrinks a bucket, a call is admitted into all of its
buckets or none. (Real worker processes sharing one limiter: tests/provider/test_limits.py.)"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from shared.model_limits import ModelLimit, buckets_of
from shared.rate_limiter import CapacityTimeoutError, Held, PoolLimiter


def _limiter(url: str, lease_s: float = 30.0) -> PoolLimiter:
    return PoolLimiter(redis.Redis.from_url(url), "tfunit", slot_lease_s=lease_s)


def _call() -> str:
    return uuid.uuid4().hex


def test_a_concurrency_cap_admits_that_many_calls_and_a_released_slot_admits_the_next(
    unit_redis: str,
) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(max_concurrency=2)}
    first, second, third = limiter.admit(buckets, 1, None), limiter.admit(buckets, 1, None), _call()

    assert limiter.try_admit(buckets, third, 1) > 0
    limiter.release(first, 5)
    assert limiter.try_admit(buckets, third, 1) == 0
    limiter.release(second, 5)
    limiter.release(Held(third, tuple(buckets)), 5)


def test_a_slot_whose_lease_is_not_renewed_comes_back_after_the_lease(unit_redis: str) -> None:
    """What a SIGKILLed worker leaves: a slot nobody renews."""
    limiter = _limiter(unit_redis, lease_s=1.0)
    buckets = {"openai:m": ModelLimit(max_concurrency=1)}
    abandoned = _call()
    assert limiter.try_admit(buckets, abandoned, 1) == 0
    limiter._renewer.drop(abandoned)  # its process is gone: nothing renews it

    assert limiter.try_admit(buckets, _call(), 1) > 0
    time.sleep(1.1)
    successor = _call()
    assert limiter.try_admit(buckets, successor, 1) == 0
    limiter.release(Held(successor, tuple(buckets)), None)


def test_a_held_slot_is_renewed_past_its_lease_while_its_call_runs(unit_redis: str) -> None:
    limiter = _limiter(unit_redis, lease_s=1.0)
    buckets = {"openai:m": ModelLimit(max_concurrency=1)}
    held = limiter.admit(buckets, 1, None)

    time.sleep(1.6)
    assert limiter.try_admit(buckets, _call(), 1) > 0, "the renewer kept the running call's slot"
    limiter.release(held, None)


def test_requests_per_minute_is_a_sliding_window_that_says_when_the_oldest_call_leaves(
    unit_redis: str,
) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(requests_per_minute=3)}
    for _ in range(3):
        assert limiter.try_admit(buckets, _call(), 1) == 0

    wait_s = limiter.try_admit(buckets, _call(), 1)

    assert 59 < wait_s <= 60


def test_tokens_per_minute_counts_the_estimate_then_the_providers_count(unit_redis: str) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(tokens_per_minute=100)}
    first = limiter.admit(buckets, 60, None)
    assert limiter.try_admit(buckets, _call(), 60) > 0, "60 estimated + 60 is past 100"

    limiter.release(first, 10)  # the provider counted 10

    assert limiter.try_admit(buckets, _call(), 60) == 0


def test_a_call_bigger_than_the_token_cap_runs_alone_rather_than_never(unit_redis: str) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(tokens_per_minute=100)}

    assert limiter.try_admit(buckets, _call(), 500) == 0
    assert limiter.try_admit(buckets, _call(), 1) > 0


def test_a_call_is_admitted_into_all_of_its_buckets_or_none(unit_redis: str) -> None:
    limiter = _limiter(unit_redis)
    limits = {"openai:m": ModelLimit(max_concurrency=5), "openai:*": ModelLimit(max_concurrency=1)}
    buckets = buckets_of("openai:m", limits)
    assert set(buckets) == {"openai:m", "openai:*"}
    held = limiter.admit(buckets_of("openai:other", limits), 1, None)  # takes the provider's one slot

    assert limiter.try_admit(buckets, _call(), 1) > 0
    limiter.release(held, None)
    # The refused call took no slot of openai:m: five calls of it fit, one at a time.
    for _ in range(5):
        limiter.release(limiter.admit(buckets, 1, None), None)
    client = redis.Redis.from_url(unit_redis)
    assert client.zcard("tfunit:limits:openai:m:slots") == 0


def test_a_429_pauses_the_bucket_for_retry_after_and_halves_its_caps(unit_redis: str) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(max_concurrency=4)}

    limiter.penalize(("openai:m",), 1.0)
    assert 0.5 < limiter.try_admit(buckets, _call(), 1) <= 1.0
    time.sleep(1.05)
    held = [limiter.admit(buckets, 1, None) for _ in range(2)]

    assert limiter.try_admit(buckets, _call(), 1) > 0, "4 halved is 2 for a while after a 429"
    for call in held:
        limiter.release(call, None)


def test_waiting_past_the_deadline_raises_rather_than_waits_on(unit_redis: str) -> None:
    limiter = _limiter(unit_redis)
    buckets = {"openai:m": ModelLimit(requests_per_minute=1)}
    limiter.admit(buckets, 1, None)
    started = time.monotonic()

    with pytest.raises(CapacityTimeoutError):
        limiter.admit(buckets, 1, time.monotonic() + 0.3)
    assert time.monotonic() - started < 1.0
