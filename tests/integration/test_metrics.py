"""Metrics of a real worker, scraped over HTTP and through `taskforce metrics`, during and
after a run whose numbers are known: how many delegations of which subagent, one failure, the
tokens the test models report."""

from __future__ import annotations

import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from orchestrator.cli.metrics import scrape
from orchestrator.embedded import worker_pool
from shared.celery_app import queue_for
from shared.settings import Settings
from tests.integration.conftest import Cluster, scripted, task_call, tool_messages
from tests.support.environment import without_settings
from tests.support.prometheus import Samples, free_port, samples, scrape_url, value
from tests.support.waiting import eventually

CALLS = [
    *(task_call(f"i{n}", "inspector", f"look at part {n}") for n in range(5)),
    *(task_call(f"s{n}", "sleeper", f"sleep on part {n}") for n in range(3)),
    task_call("boom", "crasher", "explode please"),
]
# What the test models report: 7 in and 3 out on each answer of inspector and sleeper, nothing
# for the crasher, under the name `unknown` (they give no model name).
INPUT_TOKENS, OUTPUT_TOKENS = 7 * 8, 3 * 8


def _cli_scrape(settings_env: dict[str, str]) -> Samples:
    taskforce = str(Path(sys.executable).with_name("taskforce"))
    done = subprocess.run(
        [taskforce, "metrics"], env=settings_env, capture_output=True, text=True, timeout=60, check=True
    )
    return samples(done.stdout)


def _pool(settings: Settings) -> Samples:
    return samples(scrape(settings))


def test_a_runs_numbers_on_the_workers_endpoint_and_in_taskforce_metrics(
    cluster: Cluster, tmp_path: Path
) -> None:
    """One worker taking one delegation at a time: the others wait in their queues, visibly."""
    port = free_port()
    prefix = f"tfmetrics{uuid.uuid4().hex[:6]}"
    settings = cluster.settings.model_copy(
        update={"queue_prefix": prefix, "metrics_port": port, "worker_concurrency": 1}
    )
    sleepers = queue_for(settings, "sleeper")
    with worker_pool(settings, tmp_path, 1, name="metered"), ThreadPoolExecutor(1) as pool:
        agent = create_orchestrator(scripted(CALLS, "done"), settings=settings)
        running = pool.submit(agent.invoke, {"messages": [HumanMessage(content="go")]})
        # During: a sleeper runs while the others wait in their queue, the oldest for a while.
        assert eventually(
            lambda: value(_pool(settings), "taskforce_delegations_running", subagent="sleeper") == 1, 30
        )
        during = _pool(settings)
        assert (value(during, "taskforce_queue_depth", queue=sleepers) or 0) >= 1
        assert (value(during, "taskforce_queue_oldest_age_seconds", queue=sleepers) or 0) > 0
        assert value(during, "taskforce_workers", queue=sleepers) == 1
        messages = tool_messages(running.result(timeout=90))
        assert messages["boom"].artifact["status"] == "error"

        worker = samples(scrape_url(f"http://127.0.0.1:{port}/metrics"))

    cli_env = {
        **without_settings(),
        "TASKFORCE_REDIS_URL": settings.redis_url or "",
        "TASKFORCE_QUEUE_PREFIX": prefix,
        "TASKFORCE_SUBAGENTS": settings.subagents or "",
    }
    for found in (worker, _pool(settings), _cli_scrape(cli_env)):
        assert value(found, "taskforce_delegations_started_total", subagent="inspector") == 5
        assert value(found, "taskforce_delegations_total", subagent="inspector", status="ok") == 5
        assert value(found, "taskforce_delegations_total", subagent="sleeper", status="ok") == 3
        assert value(found, "taskforce_delegations_total", subagent="crasher", status="error") == 1
        assert value(found, "taskforce_delegation_duration_seconds_count", subagent="sleeper") == 3
        # Each sleeper's model waits a second: none of them ends within half of one.
        assert value(found, "taskforce_delegation_duration_seconds_bucket", subagent="sleeper", le="0.5") == 0
        assert (
            value(found, "taskforce_delegation_duration_seconds_bucket", subagent="sleeper", le="+Inf") == 3
        )
        # One at a time: the last sleeper waited for the two before it, over a second each.
        assert value(found, "taskforce_delegation_wait_seconds_count", subagent="sleeper") == 3
        assert (value(found, "taskforce_delegation_wait_seconds_sum", subagent="sleeper") or 0) > 2
        assert value(found, "taskforce_tokens_total", model="unknown", direction="input") == INPUT_TOKENS
        assert value(found, "taskforce_tokens_total", model="unknown", direction="output") == OUTPUT_TOKENS
    after = _pool(settings)
    assert value(after, "taskforce_queue_depth", queue=sleepers) == 0
    assert value(after, "taskforce_queue_oldest_age_seconds", queue=sleepers) == 0
    assert value(after, "taskforce_delegations_running", subagent="sleeper") is None
    # A worker's own endpoint has no pool-wide gauges, so that summing every worker's adds up.
    assert not any(name == "taskforce_queue_depth" for name, _ in worker)
