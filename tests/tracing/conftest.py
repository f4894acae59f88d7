"""A LangSmith capture endpoint on loopback and a real worker process that traces to it with
the standard `LANGSMITH_*` variables, as a deployment's workers would; the test process traces
its main agents to the same endpoint through a `LangChainTracer` of their own, so that nothing
else in the session starts tracing. Database 10 of the test Redis, the parity registry."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from pydantic import SecretStr

from orchestrator.embedded import worker_pool
from shared.secrets import new_key
from shared.settings import Settings
from tests.conftest import redis_for_tests, require_redis
from tests.support.environment import exported
from tests.support.trace_capture import TraceCapture

TRACING_DB = 10
REGISTRY = "tests.parity.agents:SUBAGENTS"
CALLER_PROJECT = "caller-project"
WORKER_PROJECT = "worker-default-project"


@dataclass(frozen=True)
class Traced:
    settings: Settings
    capture: TraceCapture
    client: Client
    logs: Path
    worker_pids: list[int]

    def tracer(self) -> LangChainTracer:
        """The caller's tracer, to its own project (the workers' default is another one)."""
        return LangChainTracer(client=self.client, project_name=CALLER_PROJECT)


@pytest.fixture(scope="session")
def traced_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    url = redis_for_tests(TRACING_DB)
    require_redis(url)
    redis.Redis.from_url(url).flushdb()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=url,
        subagents=REGISTRY,
        queue_prefix=f"tftrace{os.getpid()}",
        worker_concurrency=16,
        delegation_timeout=30,
        # The main agents' clients close at exit, after this session's Redis has gone: their
        # last clean-up gives up quickly instead of riding out a minute-long "outage".
        redis_outage=3,
        general_purpose=False,
        data_dir=tmp_path_factory.mktemp("tracing-data"),
        secrets_key=SecretStr(new_key()),
    )
    logs = tmp_path_factory.mktemp("tracing-worker-logs")
    with TraceCapture().serving() as capture, ExitStack() as stack:
        # Only the workers read these: they are in the environment while they start, no longer.
        with exported(capture.environment(WORKER_PROJECT)):
            pids = stack.enter_context(worker_pool(settings, logs, 1, "--loglevel", "INFO", name="traced"))
        client = capture.client()
        yield Traced(settings, capture, client, logs, pids)
        client.flush()
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def traced(traced_pool: Traced) -> Traced:
    traced_pool.capture.clear()
    return traced_pool
