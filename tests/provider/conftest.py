"""Two real worker processes whose subagents run on string models through the stock
langchain-openai client, against a fake provider in a process of its own (`OPENAI_BASE_URL`),
on a database of the test Redis of their own (db 14)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from pydantic import SecretStr

from orchestrator.embedded import worker_pool
from shared.secrets import new_key
from shared.settings import Settings
from tests.conftest import redis_for_tests, require_redis
from tests.integration.conftest import Cluster
from tests.provider.agents import MAIN_MODEL
from tests.support.environment import exported
from tests.support.fake_provider import FakeProvider, RemoteProvider

TEST_DB = 14
REGISTRY = "tests.provider.agents:SUBAGENTS"
LATENCY_S = 0.05


@dataclass(frozen=True)
class ProviderCluster(Cluster):
    provider: RemoteProvider


@pytest.fixture(scope="session")
def provider_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderCluster]:
    url = redis_for_tests(TEST_DB)
    require_redis(url)
    redis.Redis.from_url(url).flushdb()
    with FakeProvider.in_subprocess(latency_s=LATENCY_S) as provider:
        # What a user exports: this process and the workers it starts read the same variables.
        exports = {"OPENAI_BASE_URL": provider.base_url, "OPENAI_API_KEY": "sk-provider-tests"}
        with exported(exports):
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                redis_url=url,
                subagents=REGISTRY,
                model=MAIN_MODEL,
                queue_prefix=f"tfprov{os.getpid()}",
                worker_concurrency=110,
                delegation_timeout=60,
                # Up to 5 retries of a 429 or 5xx, as a deployment would set for its provider.
                model_options={"*": {"max_retries": 5}},
                data_dir=tmp_path_factory.mktemp("data"),
                secrets_key=SecretStr(new_key()),
            )
            logs = tmp_path_factory.mktemp("provider-worker-logs")
            try:
                with worker_pool(settings, logs, 2, "--loglevel", "INFO") as pids:
                    yield ProviderCluster(settings, logs, pids, provider)
            finally:
                redis.Redis.from_url(url).flushdb()


@pytest.fixture
def provider(provider_cluster: ProviderCluster) -> RemoteProvider:
    provider_cluster.provider.reset()
    provider_cluster.provider.configure(fail_first=[], max_in_flight=1_000_000, latency_s=LATENCY_S)
    return provider_cluster.provider
