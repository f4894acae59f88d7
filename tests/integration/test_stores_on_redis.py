"""The shared store's whole suite (`tests/unit/test_stores.py`) again, on the real Redis server:
fakeredis runs the scripts with another Lua and another clock, and is never the only test of a
Redis path."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from langgraph.store.base import BaseStore

from shared.stores import SharedStore
from tests.conftest import require_redis
from tests.integration.conftest import REDIS_BASE_URL, TEST_DB
from tests.unit.test_stores import *  # noqa: F403 - the suite, collected here with this module's `store`

pytestmark = pytest.mark.integration

_stores = itertools.count()


@pytest.fixture  # type: ignore[no-redef]  # replaces the suite's own `store`
def store() -> Iterator[BaseStore]:
    url = f"{REDIS_BASE_URL}/{TEST_DB}"
    require_redis(url)
    prefix = f"tfstore{os.getpid()}-{next(_stores)}:store"
    shared = SharedStore.from_url(url, prefix)
    yield shared
    keys = list(shared.client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        shared.client.unlink(*keys)
