"""`taskforce submit`: main-agent runs as Celery jobs on main-run workers, with real workers on
the real Redis. Twenty runs of three delegations each on two main-run slots and two subagent
slots all complete: runs waiting on their subagents never hold the slots those need. A cancel
stops queued and running runs alike."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from orchestrator.batch.submissions import BatchStatus, batch_results, batch_status, main_queue
from orchestrator.embedded import spawn, stop, worker_environment, worker_pool
from shared.celery_app import worker_command
from shared.settings import Settings
from tests.conftest import require_redis
from tests.faults.support import runs, wait_for
from tests.integration.conftest import REDIS_BASE_URL, REGISTRY, TEST_DB
from tests.support.prometheus import free_port, samples, scrape_url, value

pytestmark = pytest.mark.integration

SLOTS = 2


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"{REDIS_BASE_URL}/{TEST_DB}"
    require_redis(url)
    return Settings(
        redis_url=url,
        subagents=REGISTRY,
        queue_prefix=f"tfsubmit{uuid.uuid4().hex[:6]}",
        worker_concurrency=SLOTS,
        data_dir=tmp_path / "data",
        _env_file=None,  # type: ignore[call-arg]
    )


@contextlib.contextmanager
def _main_worker(settings: Settings, directory: Path) -> Iterator[None]:
    command = worker_command(
        "--queues",
        main_queue(settings),
        "--pool",
        "threads",
        "--concurrency",
        str(SLOTS),
        "--hostname",
        f"main.{uuid.uuid4().hex[:6]}@%h",
        "--loglevel",
        "INFO",
        app="orchestrator.batch.main_runs",
    )
    process = spawn(command, directory / "main-worker.log", worker_environment(settings))
    try:
        yield
    finally:
        stop(process)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=worker_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _submit(settings: Settings, batch: Path, lines: Sequence[Mapping[str, object]], *options: str) -> str:
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    submitted = _cli(settings, "submit", str(batch), *options)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    return submitted.stdout.split("as batch ")[1].split()[0]


def _until_finished(settings: Settings, batch_id: str, timeout: float) -> BatchStatus:
    wait_for(lambda: batch_status(settings, batch_id).finished, timeout, f"batch {batch_id} to finish")
    return batch_status(settings, batch_id)


def test_twenty_runs_on_two_slots_all_complete(settings: Settings, tmp_path: Path) -> None:
    """And the main-run worker's endpoint counts them."""
    port = free_port()
    tasks = {n: [f"sleep=0.2 run {n} part {part}" for part in "abc"] for n in range(20)}
    lines = [
        {"id": f"run-{n}", "prompt": "Ask the counted subagent:\n" + "".join(f"- {t}\n" for t in parts)}
        for n, parts in tasks.items()
    ]
    metered = settings.model_copy(update={"metrics_port": port})
    with worker_pool(settings, tmp_path, 1), _main_worker(metered, tmp_path):
        batch_id = _submit(settings, tmp_path / "in.jsonl", lines)
        found = _until_finished(settings, batch_id, 240)
        status = _cli(settings, "status", batch_id)
        listed = _cli(settings, "results", batch_id)
        counted = samples(scrape_url(f"http://127.0.0.1:{port}/metrics"))
        pool = samples(_cli(settings, "metrics").stdout)

    assert found.counts == {"ok": 20}, found
    assert status.returncode == 0, status.stdout + status.stderr
    assert "20 ok" in status.stdout
    results = batch_results(settings, batch_id)
    assert sorted(result.id for result in results) == sorted(f"run-{n}" for n in range(20))
    assert all(len(result.delegations) == 3 for result in results)
    assert len(listed.stdout.splitlines()) == 20
    assert [runs(settings, t) for parts in tasks.values() for t in parts] == [1] * 60
    for found_samples in (counted, pool):
        assert value(found_samples, "taskforce_main_runs_total", status="ok") == 20
        assert value(found_samples, "taskforce_main_run_duration_seconds_count") == 20
    # The main-run worker counts main runs; its subagents' delegations are the subagent workers'.
    assert value(counted, "taskforce_delegations_started_total", subagent="counted") is None
    assert value(pool, "taskforce_delegations_started_total", subagent="counted") == 60


def test_cancel_stops_queued_and_running_runs(settings: Settings, tmp_path: Path) -> None:
    lines = [
        {"id": f"long-{n}", "prompt": f"Ask the counted subagent:\n- sleep=20 long {n} {tmp_path.name}\n"}
        for n in range(6)
    ]
    with worker_pool(settings, tmp_path, 1), _main_worker(settings, tmp_path):
        batch_id = _submit(settings, tmp_path / "in.jsonl", lines)
        wait_for(lambda: batch_status(settings, batch_id).counts.get("running") == SLOTS, 60, "two runs")
        cancelled = _cli(settings, "cancel", batch_id)
        started = time.monotonic()
        found = _until_finished(settings, batch_id, 30)
        took_s = time.monotonic() - started
        status = _cli(settings, "status", batch_id)

    print(f"cancel: every run of the batch ended {took_s:.1f} s after `taskforce cancel`")
    assert cancelled.returncode == 0, cancelled.stderr
    assert found.counts == {"cancelled": 6}, found
    assert status.returncode == 1  # finished, not all ok
    started_runs = sum(runs(settings, f"sleep=20 long {n} {tmp_path.name}") for n in range(6))
    assert started_runs <= SLOTS


def test_a_submitted_batchs_budgets_reach_its_main_run_workers_and_its_status(
    settings: Settings, tmp_path: Path
) -> None:
    """Each item may spend 1 token: its offline main model spends more on its first call, so
    none of its delegations runs; the batch's account adds every item's spending up."""
    lines = [
        {"id": f"spent-{n}", "prompt": f"Ask the counted subagent:\n- budget {n} {tmp_path.name}\n"}
        for n in range(3)
    ]
    budgets = ("--item-max-tokens", "1", "--max-tokens", "1000000")
    with worker_pool(settings, tmp_path, 1), _main_worker(settings, tmp_path):
        batch_id = _submit(settings, tmp_path / "in.jsonl", lines, *budgets)
        found = _until_finished(settings, batch_id, 120)
        status = _cli(settings, "status", batch_id)

    assert found.counts == {"failed": 3}, found
    results = batch_results(settings, batch_id)
    assert all([d.status for d in result.delegations] == ["budget_exhausted"] for result in results)
    assert [runs(settings, f"budget {n} {tmp_path.name}") for n in range(3)] == [0, 0, 0]
    spent = sum(result.usage.input_tokens + result.usage.output_tokens for result in results)
    assert found.spent is not None
    assert found.spent.tokens == spent
    assert f"budget: batch:{batch_id} spent {spent:,} of 1,000,000 tokens" in " ".join(status.stdout.split())
