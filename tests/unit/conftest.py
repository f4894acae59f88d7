"""Fixtures the unit tests share. A unit test that needs a real Redis (the worker app, a CLI run
that sends delegations) gets database 13 of the test Redis (tests/conftest.py), started on first
use and emptied before and after each such test; tests that need none start none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.conftest import redis_for_tests, require_redis

UNIT_DB = 13


@pytest.fixture
def unit_redis() -> Iterator[str]:
    """The URL of an empty Redis database of the unit tests' own."""
    url = redis_for_tests(UNIT_DB)
    require_redis(url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
