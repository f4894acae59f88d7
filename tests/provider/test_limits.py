"""The pool's model limits on real workers: two worker processes and the main agent count into
one set of buckets in Redis, against a fake provider in a process of its own that refuses (429
with Retry-After) whatever passes its capacity, through the stock langchain-openai client.

The provider counts what it saw (calls at once, calls per model, refusals); the reports and the
pool's metrics count what the workers waited and retried. The two must agree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from orchestrator import create_orchestrator
from orchestrator.cli.metrics import scrape
from orchestrator.embedded import worker_pool
from orchestrator.session import reports_in
from shared.schemas import Report
from shared.secrets import new_key
from shared.settings import Settings
from tests.conftest import redis_for_tests, require_redis
from tests.faults.support import kill_process_group, wait_for
from tests.provider.agents import MAIN_MODEL, WRITER_MODEL
from tests.provider.limited_agents import RPM_MODEL, THRIFTY_MODEL, TPM_MODEL
from tests.provider.test_workers import _all_ok, _config, _given, _prompt
from tests.support.environment import exported
from tests.support.fake_provider import FakeProvider, RemoteProvider
from tests.support.prometheus import samples, value

pytestmark = pytest.mark.integration

TEST_DB = 10
CAP = 3
LIMITS = {
    "openai:*": {"max_concurrency": CAP},
    RPM_MODEL: {"requests_per_minute": 3},
    # A call larger than the cap runs alone: one call a minute.
    TPM_MODEL: {"tokens_per_minute": 1},
}
SLOT_LEASE_S = 2.0


def _settings(url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": url,
        "subagents": "tests.provider.limited_agents:SUBAGENTS",
        "model": MAIN_MODEL,
        "queue_prefix": f"tflimits{os.getpid()}",
        "worker_concurrency": 16,
        "delegation_timeout": 60,
        "model_limits": LIMITS,
        "model_slot_lease": SLOT_LEASE_S,
        "general_purpose": False,
        "data_dir": data_dir,
        "secrets_key": SecretStr(new_key()),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture(scope="module")
def provider_process() -> Iterator[RemoteProvider]:
    with FakeProvider.in_subprocess(latency_s=0.3, retry_after_s=0.5) as provider:
        yield provider


@pytest.fixture(scope="module")
def limited(provider_process: RemoteProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Two workers under LIMITS, and the settings their main agents use."""
    url = redis_for_tests(TEST_DB)
    require_redis(url)
    redis.Redis.from_url(url).flushdb()
    exports = {"OPENAI_BASE_URL": provider_process.base_url, "OPENAI_API_KEY": "sk-limits-tests"}
    with exported(exports):
        settings = _settings(url, tmp_path_factory.mktemp("data"))
        logs = tmp_path_factory.mktemp("limited-worker-logs")
        try:
            with worker_pool(settings, logs, 2, "--loglevel", "INFO"):
                yield settings
        finally:
            redis.Redis.from_url(url).flushdb()


@pytest.fixture
def provider(provider_process: RemoteProvider, limited: Settings) -> RemoteProvider:
    """The provider with nothing counted, and the buckets as a quiet minute leaves them."""
    client = redis.Redis.from_url(str(limited.redis_url))
    for key in client.scan_iter(f"{limited.queue_prefix}:limits:*"):
        client.delete(key)
    provider_process.reset()
    provider_process.configure(fail_first=[], max_in_flight=1_000_000, latency_s=0.3)
    return provider_process


def _name(model: str) -> str:
    """The model as the provider sees it: the string less its provider."""
    return model.split(":", 1)[1]


def _leased(client: redis.Redis, slots: str) -> int:
    """Slots whose lease has not run out, by the Redis clock the limiter reads."""
    seconds, micros = client.time()
    return int(client.zcount(slots, seconds * 1000 + micros // 1000, "+inf"))


def _retried(reports: list[Report], status: str) -> int:
    return sum(
        retry.count for report in reports for retry in report.provider_retries if retry.status == status
    )


def test_the_concurrency_cap_holds_across_two_worker_processes(
    limited: Settings, provider: RemoteProvider
) -> None:
    provider.configure(max_in_flight=CAP)  # one call more at once, and the provider refuses it
    agent = create_orchestrator(settings=limited)

    reports = reports_in(agent.invoke(_given(_prompt(24)), _config("capped"))["messages"])

    _all_ok(reports, 24)
    assert len({report.worker for report in reports}) == 2, "both workers ran delegations"
    stats = provider.stats()
    assert stats.refused == {}
    assert stats.max_in_flight == CAP
    assert sum(report.model_wait_s.get(WRITER_MODEL, 0) for report in reports) > 0


def test_429s_are_retried_after_retry_after_and_counted_in_reports_and_metrics(
    limited: Settings, provider: RemoteProvider
) -> None:
    """The provider's capacity is below the limits: its 429s are the retries' to absorb."""
    provider.configure(max_in_flight=CAP - 1)
    before = value(
        samples(scrape(limited)), "taskforce_provider_retries_total", model=WRITER_MODEL, status="429"
    )
    agent = create_orchestrator(settings=limited)

    reports = reports_in(agent.invoke(_given(_prompt(12)), _config("refused"))["messages"])

    _all_ok(reports, 12)
    refused = provider.stats().refused.get("429", 0)
    assert refused > 0
    assert _retried(reports, "429") == refused, "every 429 the provider sent was retried, and counted"
    after = value(
        samples(scrape(limited)), "taskforce_provider_retries_total", model=WRITER_MODEL, status="429"
    )
    assert (after or 0) - (before or 0) == refused


def test_requests_and_tokens_per_minute_hold_over_the_window_across_workers(
    limited: Settings, provider: RemoteProvider
) -> None:
    """Within one minute RPM_MODEL answers 3 calls and TPM_MODEL one, wherever they come from;
    the calls past that wait, until the delegations' deadline, which no wait outlasts. Each
    delegation needs two calls, so at most one RPM delegation and no TPM one ends ok."""
    agent = create_orchestrator(settings=limited.model_copy(update={"delegation_timeout": 6}))
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(agent.invoke, _given(_prompt(4, subagent)), _config(subagent))
            for subagent in ("rpm-limited", "tpm-limited")
        ]
        rpm_reports, tpm_reports = (reports_in(run.result(timeout=60)["messages"]) for run in runs)

    calls = provider.stats().calls_by_model
    assert (calls[_name(RPM_MODEL)], calls[_name(TPM_MODEL)]) == (3, 1)
    assert len({report.worker for report in rpm_reports + tpm_reports}) == 2
    assert [report.status for report in rpm_reports].count("ok") <= 1
    assert {report.status for report in tpm_reports} == {"timeout"}
    waited = [report for report in rpm_reports + tpm_reports if report.status == "timeout"]
    assert len(waited) >= 7
    assert all(sum(report.model_wait_s.values()) > 0 for report in waited)


def test_a_spec_holds_its_type_to_its_own_limits_within_the_pools(
    limited: Settings, provider: RemoteProvider
) -> None:
    provider.configure(latency_s=0.2)
    agent = create_orchestrator(settings=limited)

    reports = reports_in(agent.invoke(_given(_prompt(6, "thrifty")), _config("thrifty"))["messages"])

    _all_ok(reports, 6)
    assert provider.stats().max_in_flight == 1
    assert provider.stats().calls_by_model[_name(THRIFTY_MODEL)] == 12


def test_a_sigkilled_workers_slots_come_back_within_the_slot_lease(
    limited: Settings, provider: RemoteProvider, tmp_path: Path
) -> None:
    """A worker of its own, so that the module's two live on, SIGKILLed while its calls hold
    every slot; a new worker then runs the handed-over delegations to the end."""
    settings = limited.model_copy(update={"queue_prefix": f"{limited.queue_prefix}-kill", "lease": 2})
    slots = f"{settings.queue_prefix}:limits:openai:*:slots"
    client = redis.Redis.from_url(str(settings.redis_url))
    provider.configure(latency_s=1.5, max_in_flight=CAP)
    agent = create_orchestrator(settings=settings)
    with (
        exported({"OPENAI_BASE_URL": provider.base_url, "OPENAI_API_KEY": "sk-limits-tests"}),
        worker_pool(settings, tmp_path, 1, name="victim") as (victim,),
        ThreadPoolExecutor(1) as pool,
    ):
        running = pool.submit(agent.invoke, _given(_prompt(CAP)), _config("killed"))
        wait_for(lambda: provider.stats().in_flight == CAP, 30, "every slot held")
        kill_process_group(victim)
        assert _leased(client, slots) == CAP, "nobody released the dead worker's slots"
        returned_after = wait_for(lambda: _leased(client, slots) == 0, 10, "the slots to come back")
        with worker_pool(settings, tmp_path, 1, name="successor"):
            reports = reports_in(running.result(timeout=120)["messages"])

    _all_ok(reports, CAP)
    assert all(report.attempts == 2 for report in reports)
    assert returned_after <= SLOT_LEASE_S + 1, "slots are leased, not held until someone notices"
    assert provider.stats().max_in_flight == CAP
    assert provider.stats().refused == {}
