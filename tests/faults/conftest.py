"""Every fault test gets a Redis of its own, on a spare port, that it may kill and restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import RedisProcess, redis_process


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisProcess]:
    with redis_process(tmp_path) as started:
        yield started
