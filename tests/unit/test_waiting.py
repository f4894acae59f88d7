"""How the orchestrator turns what it reads from Redis (or fails to) into reports."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest
from celery import states
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from redis.exceptions import ConnectionError as RedisConnectionError

from orchestrator import client as client_module
from orchestrator import create_orchestrator
from orchestrator.client import _Wait
from shared.schemas import Delegation, Limits, Report
from shared.settings import Settings

SECRET = "sk-wait-SECRET"


def _delegation(timeout_s: float = 5.0) -> Delegation:
    return Delegation(
        id="t:1",
        subagent_type="researcher",
        description="d",
        secrets={"api_key": SECRET},  # type: ignore[dict-item]
        limits=Limits(timeout_s=timeout_s, report_max_chars=500, recursion_limit=10),
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(client_module.time, "monotonic", fake.monotonic)
    return fake


def _wait(clock: _Clock, timeout_s: float = 5.0, queue_timeout: float = 60.0) -> _Wait:
    return _Wait(
        _delegation(timeout_s), queue_timeout=queue_timeout, queue="taskforce.researcher", sent_at=clock.now
    )


def test_a_successful_job_gives_the_workers_report(clock: _Clock) -> None:
    report = Report(delegation_id="t:1", subagent_type="researcher", status="ok", summary="fine")
    wait = _wait(clock)

    assert wait.step({"status": states.SUCCESS, "result": report.model_dump(mode="json")}) == report


def test_a_report_it_cannot_read_is_an_error(clock: _Clock) -> None:
    got = _wait(clock).step({"status": states.SUCCESS, "result": {"version": 99}})

    assert got is not None
    assert got.status == "error"
    assert "cannot read" in got.summary


def test_a_failed_job_is_an_error_with_secrets_scrubbed(clock: _Clock) -> None:
    got = _wait(clock).step({"status": states.FAILURE, "result": ValueError(f"bad key {SECRET}")})

    assert got is not None
    assert got.status == "error"
    assert "ValueError: bad key **********" in got.summary
    assert SECRET not in got.summary


def test_a_job_no_worker_takes_times_out_naming_its_queue(clock: _Clock) -> None:
    wait = _wait(clock, queue_timeout=30)
    clock.now += 29
    assert wait.step({"status": states.PENDING}) is None
    clock.now += 2
    got = wait.step({"status": states.PENDING})

    assert got is not None
    assert got.status == "timeout"
    assert "taskforce.researcher" in got.summary


def test_a_started_job_gets_its_timeout_plus_grace_however_long_it_queued(clock: _Clock) -> None:
    wait = _wait(clock, timeout_s=5, queue_timeout=30)
    clock.now += 25
    assert wait.step({"status": states.STARTED}) is None
    clock.now += 5 + client_module.REPORT_GRACE_S - 1
    assert wait.step({"status": states.STARTED}) is None
    clock.now += 2
    got = wait.step({"status": states.STARTED})

    assert got is not None
    assert got.status == "timeout"


def test_redis_may_be_away_for_a_while_but_not_for_ever(clock: _Clock) -> None:
    wait = _wait(clock)
    outage = RedisConnectionError("connection refused")
    assert wait.step(outage) is None
    clock.now += client_module.REDIS_OUTAGE_S - 1
    assert wait.step(outage) is None
    # Back for one poll: the outage clock starts again.
    assert wait.step({"status": states.STARTED}) is None
    clock.now += 2
    assert wait.step(outage) is None
    clock.now += client_module.REDIS_OUTAGE_S + 1
    got = wait.step(outage)

    assert got is not None
    assert got.status == "error"
    assert "lost contact with Redis" in got.summary


class _Turns(GenericFakeChatModel):
    def bind_tools(self, tools: Sequence[Any], **_: Any) -> Any:
        return self


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_when_jobs_cannot_be_sent_each_call_reports_it_and_the_run_goes_on() -> None:
    calls = [
        {
            "name": "task",
            "args": {"description": f"job {n}", "subagent_type": "general-purpose"},
            "id": f"c{n}",
        }
        for n in range(2)
    ]
    model = _Turns(messages=iter([AIMessage(content="", tool_calls=calls), AIMessage(content="carried on")]))
    settings = Settings(redis_url=f"redis://127.0.0.1:{_closed_port()}/0", _env_file=None)  # type: ignore[call-arg]

    state = create_orchestrator(model, settings=settings).invoke({"messages": [HumanMessage(content="go")]})

    errors = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in errors] == ["c0", "c1"]
    for message in errors:
        assert message.status == "error"
        assert "could not send the job" in str(message.content)
    assert state["messages"][-1].content == "carried on"
