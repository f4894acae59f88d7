"""The test Redis (a db of its own, see tests/conftest.py) and real `celery worker` processes for
the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from pydantic import SecretStr

from orchestrator.embedded import worker_pool
from shared.celery_app import queue_for
from shared.secrets import new_key
from shared.settings import Settings
from tests.conftest import redis_for_tests, require_redis
from tests.integration.agents import DEDICATED
from tests.support.models import ScriptedModel

TEST_DB = 11
REDIS_BASE_URL = redis_for_tests(TEST_DB).rsplit("/", 1)[0]
REGISTRY = "tests.integration.agents:SUBAGENTS"


@dataclass(frozen=True)
class Cluster:
    settings: Settings
    logs: Path
    worker_pids: list[int]

    def worker_log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in sorted(self.logs.glob("worker-*.log")))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    url = f"{REDIS_BASE_URL}/{TEST_DB}"
    require_redis(url)
    redis.Redis.from_url(url).flushdb()
    settings = Settings(
        redis_url=url,
        subagents=REGISTRY,
        queue_prefix=f"tftest{os.getpid()}",
        worker_concurrency=32,
        delegation_timeout=20,
        data_dir=tmp_path_factory.mktemp("data"),
        secrets_key=SecretStr(new_key()),
    )
    logs = tmp_path_factory.mktemp("worker-logs")
    # Workers started by the tests themselves serve the dedicated types.
    dedicated = ",".join(queue_for(settings, name) for name in DEDICATED)
    with worker_pool(settings, logs, 1, "--loglevel", "INFO", "--exclude-queues", dedicated) as pids:
        # Workers serve general-purpose; the tests' scripted main models do not offer it, since
        # deepagents would run it on them, and workers cannot (orchestrator.parity).
        yield Cluster(settings.model_copy(update={"general_purpose": False}), logs, pids)
    redis.Redis.from_url(url).flushdb()


def task_call(call_id: str, subagent_type: str, description: str) -> ToolCall:
    return ToolCall(
        name="task",
        args={"description": description, "subagent_type": subagent_type},
        id=call_id,
        type="tool_call",
    )


def scripted(*turns: list[ToolCall] | str) -> ScriptedModel:
    messages = [
        AIMessage(content=t) if isinstance(t, str) else AIMessage(content="", tool_calls=t) for t in turns
    ]
    return ScriptedModel(messages=iter(messages))


def tool_messages(state: dict[str, Any]) -> dict[str, ToolMessage]:
    """A main agent's tool results by tool call id."""
    return {m.tool_call_id: m for m in state["messages"] if isinstance(m, ToolMessage)}


def read_call(call_id: str, path: str, offset: int = 0, limit: int = 100) -> ToolCall:
    """The main agent's own `read_file` call."""
    return ToolCall(
        name="read_file",
        args={"file_path": path, "offset": offset, "limit": limit},
        id=call_id,
        type="tool_call",
    )
