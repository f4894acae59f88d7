"""One Redis db and one pool of real `celery worker` processes for the whole parity session.

The workers load the parity registry (`tests.parity.agents:SUBAGENTS`) and keep their shared
files under a namespace of this session; the deepagents runs keep theirs in the same Redis
under another namespace, so both sides' files live in the same code and are walked alike. The
same goes for the main agent's store: the workers' `SharedStore`, and another for deepagents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr

from orchestrator.embedded import worker_pool
from shared.celery_app import queue_for
from shared.files import shared_files
from shared.secrets import new_key
from shared.settings import Settings
from shared.stores import SharedStore
from tests.conftest import require_redis
from tests.integration.conftest import REDIS_BASE_URL
from tests.parity.agents import SEPARATE_QUEUES
from tests.parity.harness import WORKER_NAME, ParityEnv

PARITY_DB = 12
"""Apart from the integration suite's db 11, so both suites can run at once."""
REGISTRY = "tests.parity.agents:SUBAGENTS"


@pytest.fixture(scope="session")
def parity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParityEnv]:
    url = f"{REDIS_BASE_URL}/{PARITY_DB}"
    require_redis(url)
    redis.Redis.from_url(url).flushdb()
    prefix = f"tfparity{os.getpid()}"
    settings = Settings(
        redis_url=url,
        files_url=f"{url}#{prefix}:fs",
        subagents=REGISTRY,
        queue_prefix=prefix,
        worker_concurrency=16,
        delegation_timeout=20,
        data_dir=tmp_path_factory.mktemp("parity-data"),
        secrets_key=SecretStr(new_key()),
    )
    logs = tmp_path_factory.mktemp("parity-worker-logs")
    deepagents_files = settings.model_copy(update={"files_url": f"{url}#{prefix}:deepagents-fs"})
    # The memo queues are served by workers of their own, one each (test_context_guide.py).
    apart = ",".join(queue_for(settings, queue) for queue in SEPARATE_QUEUES)
    with worker_pool(settings, logs, 1, "--loglevel", "INFO", "--exclude-queues", apart, name=WORKER_NAME):
        # deepagents would run general-purpose on the scripted main model, which workers
        # cannot (orchestrator.parity): the main agents here offer only the registry's specs.
        yield ParityEnv(
            settings=settings.model_copy(update={"general_purpose": False}),
            taskforce_files=shared_files(settings),
            deepagents_files=shared_files(deepagents_files),
            logs=logs,
            taskforce_store=SharedStore.from_settings(settings),
            deepagents_store=SharedStore.from_url(url, f"{prefix}:deepagents-store"),
        )
    redis.Redis.from_url(url).flushdb()
