"""`taskforce flower` over HTTP and `taskforce worker`, each a real process against the real Redis."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from pydantic import SecretStr

from orchestrator import create_orchestrator
from orchestrator.delegation.client import DelegationClient
from orchestrator.embedded import free_port, spawn, stop, worker_environment
from shared.celery_app import create_celery_app, queue_for
from shared.ledger import open_ledger
from shared.schemas import Delegation, Limits
from shared.settings import Settings
from tests.integration.conftest import Cluster, scripted, task_call

pytestmark = pytest.mark.integration


FLOWER_USER = "ops"
FLOWER_PASSWORD = "flower-PASSWORD-808"


def _request(url: str, credentials: tuple[str, str] | None = (FLOWER_USER, FLOWER_PASSWORD)) -> Any:
    request = urllib.request.Request(url)
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return urllib.request.urlopen(request, timeout=5)


def _get_json(url: str) -> Any:
    with _request(url) as response:
        return json.loads(response.read())


def _status(url: str, credentials: tuple[str, str] | None) -> int:
    try:
        with _request(url, credentials) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@dataclass(frozen=True)
class Flower:
    base: str
    pid: int
    log: Path


@pytest.fixture(scope="module")
def flower(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flower]:
    """Started the way an operator starts it: `taskforce flower` with the credentials in a
    setting, Flower's own options after it."""
    port = free_port()
    env = worker_environment(cluster.settings)
    env["TASKFORCE_FLOWER_BASIC_AUTH"] = f"{FLOWER_USER}:{FLOWER_PASSWORD}"
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    command = [sys.executable, "-m", "orchestrator", "flower", f"--port={port}", "--address=127.0.0.1"]
    process = spawn(command, log, env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_flower_sees_events(base, cluster.settings, process, log)
        yield Flower(base, process.pid, log)
    finally:
        stop(process)


def test_taskforce_flower_lets_in_only_its_basic_auth_credentials(flower: Flower) -> None:
    # Flower itself leaves /metrics and /healthcheck open; taskforce puts them behind the auth too.
    for path in ("/", "/api/tasks", "/api/workers", "/metrics", "/healthcheck"):
        assert _status(flower.base + path, None) == 401
        assert _status(flower.base + path, (FLOWER_USER, "wrong")) == 401
        assert _status(flower.base + path, (FLOWER_USER, FLOWER_PASSWORD)) == 200

    # `taskforce flower` became Flower (exec), whose command line any user can read with `ps`.
    command_line = Path(f"/proc/{flower.pid}/cmdline").read_bytes().decode()
    assert "flower" in command_line
    assert FLOWER_PASSWORD not in command_line
    assert FLOWER_PASSWORD not in flower.log.read_text()


def _wait_until_flower_sees_events(base: str, settings: Settings, process: Any, log: Path) -> None:
    """Flower answers HTTP before its event receiver is subscribed; events sent before that
    are never seen. Send probes until one shows up."""
    limits = Limits(timeout_s=10, report_max_chars=500, recursion_limit=10)
    deadline = time.monotonic() + 60
    with contextlib.closing(DelegationClient(create_celery_app(settings), settings)) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            probe = f"probe-{time.monotonic_ns()}"
            try:
                client.send(
                    Delegation(id=probe, subagent_type="inspector", description="probe", limits=limits)
                )
                probe_deadline = time.monotonic() + 3
                while time.monotonic() < probe_deadline:
                    if probe in _get_json(f"{base}/api/tasks"):
                        return
                    time.sleep(0.2)
            except OSError:
                time.sleep(0.2)
    raise AssertionError(f"Flower never showed an event:\n{log.read_text()}")


def test_flower_shows_every_delegation_with_its_secrets_redacted(cluster: Cluster, flower: Flower) -> None:
    secret = "sk-flower-SECRET-333"
    agent = create_orchestrator(
        scripted([task_call("f1", "researcher", "first"), task_call("f2", "inspector", "second")], "done"),
        settings=cluster.settings,
    )
    state = agent.invoke({"messages": [HumanMessage(content="go")]}, context={"vault": SecretStr(secret)})
    task_ids = {
        m.tool_call_id: m.artifact["delegation_id"] for m in state["messages"] if isinstance(m, ToolMessage)
    }
    assert len(task_ids) == 2

    deadline = time.monotonic() + 20
    while True:
        tasks = _get_json(f"{flower.base}/api/tasks")
        ours = [t for t in tasks.values() if any(d in str(t.get("args")) for d in task_ids.values())]
        if len(ours) == 2 and all(t["state"] == "SUCCESS" for t in ours):
            break
        assert time.monotonic() < deadline, f"Flower saw {ours}"
        time.sleep(0.3)

    kinds = {"f1": "researcher", "f2": "inspector"}
    descriptions = {"f1": "first", "f2": "second"}
    for call, delegation_id in task_ids.items():
        (task,) = (t for t in ours if delegation_id in t["args"])
        assert f"'subagent_type': '{kinds[call]}', 'description': '{descriptions[call]}'" in task["args"]
    for task in ours:
        assert task["name"] == "taskforce.run_delegation"
        assert task["worker"].startswith("w0.")
        assert "'vault': '**********'" in task["args"]
        assert secret not in json.dumps(task)


def _wait_until_served(settings: Settings, queue: str, worker: Any, log: Path) -> None:
    ledger = open_ledger(settings)
    deadline = time.monotonic() + 60
    while not ledger.serving(queue, silence_s=10):
        assert worker.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_taskforce_worker_passes_celery_options_through(cluster: Cluster, tmp_path: Path) -> None:
    # A queue prefix of its own, so only this worker can take the job.
    settings: Settings = cluster.settings.model_copy(update={"queue_prefix": f"solo{os.getpid()}"})
    env = worker_environment(settings)
    queue = f"{settings.queue_prefix}.inspector"
    worker = spawn(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "worker",
            "-n",
            "custom-name@%h",
            "-Q",
            queue,
            "--concurrency",
            "2",
        ],
        tmp_path / "worker.log",
        env,
    )
    try:
        _wait_until_served(settings, queue, worker, tmp_path / "worker.log")
        agent = create_orchestrator(
            scripted([task_call("solo", "inspector", "who runs me?")], "done"), settings=settings
        )
        state = agent.invoke({"messages": [HumanMessage(content="go")]})
        message = next(m for m in state["messages"] if isinstance(m, ToolMessage))

        assert message.artifact["status"] == "ok", (tmp_path / "worker.log").read_text()
        assert message.artifact["worker"] == f"custom-name@{socket.gethostname()}"
        assert json.loads(str(message.content))["pid"] == worker.pid  # exec: the CLI became the worker
    finally:
        stop(worker)


def test_one_pool_per_queue_each_worker_named_uniquely_by_default(cluster: Cluster, tmp_path: Path) -> None:
    # A queue prefix of its own, so only these workers can take the jobs.
    settings: Settings = cluster.settings.model_copy(update={"queue_prefix": f"pools{os.getpid()}"})
    env = worker_environment(settings)
    kinds = ("inspector", "researcher", "pooled")
    # `pooled` names its queue in its spec: {"queue": "shared-pool"}.
    queues = {kind: queue_for(settings, "shared-pool" if kind == "pooled" else kind) for kind in kinds}
    logs = {kind: tmp_path / f"{kind}.log" for kind in kinds}
    # No -n: `taskforce worker` names each worker itself.
    pools = {
        kind: spawn(
            [sys.executable, "-m", "orchestrator", "worker", "-Q", queues[kind], "--concurrency", "2"],
            logs[kind],
            env,
        )
        for kind in kinds
    }
    try:
        for kind in kinds:
            _wait_until_served(settings, queues[kind], pools[kind], logs[kind])
        agent = create_orchestrator(
            scripted(
                [
                    task_call("i", "inspector", "inspect"),
                    task_call("r", "researcher", "research"),
                    task_call("p", "pooled", "pool"),
                ],
                "done",
            ),
            settings=settings,
        )
        state = agent.invoke({"messages": [HumanMessage(content="go")]})
        reports = {m.tool_call_id: m.artifact for m in state["messages"] if isinstance(m, ToolMessage)}

        host = socket.gethostname()
        for call, kind in (("i", "inspector"), ("r", "researcher"), ("p", "pooled")):
            assert reports[call]["status"] == "ok", logs[kind].read_text()
            # exec: the CLI's pid is the worker's, and the name it chose holds it.
            assert reports[call]["worker"] == f"taskforce.{pools[kind].pid}@{host}"
    finally:
        stop(*pools.values())
