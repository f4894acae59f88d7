"""The Redis every test that needs a real one uses: `TASKFORCE_TEST_REDIS` when set (CI may point
it at a server, as `redis://host:port`), else a private one this pytest run starts on a spare
loopback port when a test first needs it, and stops at its end. Two runs on one machine never
share a database, and none needs a Redis of the machine's own.

The rule for a Redis that does not answer is `require_redis`'s: skipped on a laptop, failed in
CI, where a skipped suite would look green."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
import redis

from orchestrator.embedded import redis_server

TEST_REDIS = "TASKFORCE_TEST_REDIS"
_private = contextlib.ExitStack()


def redis_for_tests(db: int) -> str:
    """The URL of database `db` of the test Redis, started on first use. Conftests ask at import,
    which for the directories named on the command line comes before any pytest hook."""
    if not os.environ.get(TEST_REDIS):
        scratch = _private.enter_context(tempfile.TemporaryDirectory(prefix="taskforce-tests-"))
        url = _private.enter_context(redis_server(Path(scratch)))
        os.environ[TEST_REDIS] = url.rsplit("/", 1)[0]
    return f"{os.environ[TEST_REDIS]}/{db}"


def pytest_unconfigure(config: pytest.Config) -> None:
    _private.close()


def require_redis(url: str) -> None:
    """Skip without Redis on a laptop; fail in CI, where a skipped suite would look green."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.ConnectionError as error:
        message = f"no Redis at {url}: {error}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
