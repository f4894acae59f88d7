"""What the fault tests share: a Redis of their own that can be killed and restarted, settings
for a lifecycle under test, and the counts that say "nothing lost, nothing doubled"."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from orchestrator.embedded import find_redis_server, free_port, spawn, stop
from shared.ledger import INBOX_TTL_S, KOMBU_UNACKED, as_text, open_ledger
from shared.secrets import new_key
from shared.settings import Settings
from tests.integration.agents import RUNS_PREFIX

REGISTRY = "tests.integration.agents:SUBAGENTS"


class RedisProcess:
    """redis-server on a spare loopback port, append-only with an fsync per write, so that a
    kill -9 and a restart keep everything it acknowledged."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            find_redis_server(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
        self.process = spawn(command, self.directory / "redis.log")
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                if client.ping():
                    return
            assert time.monotonic() < deadline, (self.directory / "redis.log").read_text()
            time.sleep(0.02)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace=5)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@contextlib.contextmanager
def redis_process(directory: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fault_settings(server: RedisProcess, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": server.url,
        "subagents": REGISTRY,
        "queue_prefix": f"faults{os.getpid()}",
        "worker_concurrency": 4,
        "secrets_key": new_key(),
        "data_dir": data_dir,
        # The tests' main models are scripted; general-purpose would need one for workers.
        "general_purpose": False,
        **overrides,
    }
    return Settings(**values, _env_file=None)  # type: ignore[call-arg]


def runs(settings: Settings, task: str) -> int:
    """How many times the `counted` subagent's body ran for `task`."""
    assert settings.redis_url is not None
    return int(redis.Redis.from_url(settings.redis_url).get(RUNS_PREFIX + task) or 0)


def worker_names(pids: list[int], name: str = "w") -> dict[str, int]:
    """Worker node name (as the ledger records it) to the pid leading its process group, for
    workers `worker_pool(..., name=name)` started."""
    return {f"{name}{index}.{os.getpid()}@{socket.gethostname()}": pid for index, pid in enumerate(pids)}


def running_on(settings: Settings) -> dict[str, str]:
    """Delegation id to the worker running it now."""
    ledger = open_ledger(settings)
    prefix = f"{settings.queue_prefix}:dlg:"
    ids = [as_text(key)[len(prefix) :] for key in ledger.client.keys(prefix + "*")]
    _, records = ledger.snapshot(ids)
    return {key: record.worker for key, record in records.items() if record.state == "running"}


def leftovers(settings: Settings) -> dict[str, Any]:
    """Everything a finished run must not leave behind: delegation records, leases, queued or
    unacknowledged messages, inboxes that would never expire (the inbox of a process killed
    mid-run may hold pushed reports for a few minutes)."""
    ledger = open_ledger(settings)
    client = ledger.client
    return {
        "records": sorted(as_text(k) for k in client.keys(f"{settings.queue_prefix}:dlg:*")),
        "leases": client.zrange(f"{settings.queue_prefix}:leases", 0, -1),
        "queued": {
            as_text(k): client.llen(k)
            for k in client.keys(f"{settings.queue_prefix}.*")
            if client.type(k) == b"list"
        },
        "unacked": client.hlen(KOMBU_UNACKED),
        "lasting inboxes": [
            key
            for key in client.keys(f"{settings.queue_prefix}:inbox:*")
            if not 0 < client.ttl(key) <= INBOX_TTL_S
        ],
    }


NOTHING_LEFT = {"records": [], "leases": [], "queued": {}, "unacked": 0, "lasting inboxes": []}


def assert_nothing_left(settings: Settings) -> None:
    """Records are collected from the client's listener thread, a moment after a run returns."""
    deadline = time.monotonic() + 5
    while (left := leftovers(settings)) != NOTHING_LEFT and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == NOTHING_LEFT


def kill_process_group(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """A worker is the leader of its own process group (its pool children are in it too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Polls `condition` until it holds; returns how long that took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(interval)
    return time.monotonic() - started
