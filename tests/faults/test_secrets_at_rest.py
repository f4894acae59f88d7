"""Secrets at rest: after a run whose context carries secrets, no file Redis wrote (its
append-only log) and no worker log holds one in plain text."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from pydantic import SecretStr

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from tests.faults.support import RedisProcess, fault_settings
from tests.integration.conftest import scripted, task_call

pytestmark = pytest.mark.faults

BY_NAME = "sk-at-rest-BYNAME-41"
AS_SECRETSTR = "sk-at-rest-SECRETSTR-42"


def test_no_secret_is_written_in_plain_text_to_redis_or_worker_logs(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = fault_settings(server, tmp_path)
    with worker_pool(settings, tmp_path, 1, "--loglevel", "DEBUG"):
        agent = create_orchestrator(
            scripted([task_call("r", "researcher", f"look, the key is {BY_NAME}")], "done"), settings=settings
        )
        state = agent.invoke(
            {"messages": [HumanMessage(content="go")]},
            context={"api_key": BY_NAME, "vault": SecretStr(AS_SECRETSTR)},
        )

    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.artifact["status"] == "ok"
    assert "**********" in str(message.content)  # the subagent saw them, its report does not show them
    written = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert b"appendonly" in b"".join(p.name.encode() for p in tmp_path.rglob("*"))  # the log is there
    for secret in (BY_NAME, AS_SECRETSTR):
        assert secret.encode() not in written, secret
