"""Redis is killed and restarted under running delegations: the worker must live through it and
take new work afterwards.

With kombu 5.7 a worker died of this (see `shared.compat.kombu`) when four things met: jobs
running, not yet acknowledged, when it closed its lost connection; a free slot, so that its BRPOP
was waiting; the loss noticed first on its pub/sub connection; and Redis still away while it
tore the connection down. A real kill -9 brings them together often, not always; this test
brings them together every time, so it fails every time without the workaround.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.delegation.client import DelegationClient
from shared.celery_app import RUN_DELEGATION, create_celery_app
from shared.schemas import Delegation, Report
from tests.faults.processes import WorkerProcess, worker_processes
from tests.faults.support import RedisProcess, fault_settings, redis_process

pytestmark = pytest.mark.faults

RUNNING = 4
# The running jobs outlast the outage and the reconnect, and end before the survival check.
RUNNING_S = 8
# Time for the jobs to get through their start-up, which keeps the worker's event loop from
# renewing its BRPOP (once a second) promptly.
SETTLE_S = 1.0
# The worker notices the loss and tears its connection down while Redis is still away, as
# during any real restart.
OUTAGE_S = 1.0
SURVIVAL_S = 10.0


def send_delegation(client: DelegationClient, task: str) -> Delegation:
    """A delegation of the `counted` subagent, which sleeps as long as its task says."""
    delegation = Delegation(
        id=f"fault-{uuid.uuid4().hex}",
        subagent_type="counted",
        description=f"{task} {uuid.uuid4().hex}",
        limits=client.settings.limits(recursion_limit=10),
    )
    client.send(delegation)
    return delegation


def wait_for_report(client: DelegationClient, delegation: Delegation, timeout: float) -> Report:
    """The report of a delegation this client sent; the one place that knows how reports are
    read."""
    return client.send(delegation).result(timeout)


def wait_until_received(worker: WorkerProcess, delegations: list[Delegation], timeout: float = 30) -> None:
    """Until the worker has taken every one of these jobs; with free slots, each starts at once."""
    deadline = time.monotonic() + timeout
    while True:
        log = worker.log_text()
        if all(f"{RUN_DELEGATION}[{delegation.id}] received" in log for delegation in delegations):
            return
        if time.monotonic() > deadline or not worker.alive():
            raise AssertionError(f"the worker did not take every job:\n{log[-3000:]}")
        time.sleep(0.05)


def wait_until_polling(server: RedisProcess, timeout: float = 10) -> None:
    """Until a worker is blocked in BRPOP, asking for more work."""
    client = server.client()
    deadline = time.monotonic() + timeout
    try:
        while not any(entry["cmd"] == "brpop" for entry in client.client_list()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no worker waits in BRPOP: {client.client_list()}")
            time.sleep(0.01)
    finally:
        client.close()


def drop_pubsub_connections(server: RedisProcess) -> None:
    """A kill -9 drops a worker's connections in whatever order the kernel closes them; this
    makes its pub/sub connection (remote control) go first, the order that killed workers."""
    client = server.client()
    try:
        client.client_kill_filter(_type="pubsub")
    finally:
        client.close()


def test_threads_worker_survives_a_redis_kill_and_takes_new_work(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(redis_process(tmp_path / "redis"))
        settings = fault_settings(server, tmp_path / "data")
        # Twice the slots the jobs need, so the worker asks for more work while they run.
        [worker] = stack.enter_context(
            worker_processes(settings, tmp_path / "workers", pool="threads", concurrency=2 * RUNNING)
        )
        client = DelegationClient(create_celery_app(settings), settings)
        stack.callback(client.close)

        running = [send_delegation(client, f"sleep={RUNNING_S}") for _ in range(RUNNING)]
        wait_until_received(worker, running)
        time.sleep(SETTLE_S)
        wait_until_polling(server)

        drop_pubsub_connections(server)
        server.kill9()
        time.sleep(OUTAGE_S)
        server.start()
        restarted = time.monotonic()
        after_restart = send_delegation(client, "sleep=0")

        time.sleep(max(0.0, restarted + SURVIVAL_S - time.monotonic()))
        log = worker.log_text()
        assert "Unrecoverable error" not in log, log[-5000:]
        assert worker.alive(), f"the worker exited with {worker.process.returncode}:\n{log[-5000:]}"
        assert wait_for_report(client, after_restart, timeout=20).status == "ok"
