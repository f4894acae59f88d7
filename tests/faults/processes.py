"""Worker processes that a fault test owns, so it may kill them, watch them and read their logs.

`orchestrator.embedded.worker_pool` starts workers for a run and yields only their pids; a
fault test needs the processes themselves (an exited worker must not pass for alive as an
unreaped zombie does) and a pool, concurrency and settings of its choosing. The workers are
started the same way otherwise: in their own sessions, so a kill reaches a worker and its pool
children and nothing else.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.batch.submissions import main_queue
from orchestrator.cli.app import MAIN_RUNS_APP
from orchestrator.embedded import _wait_until_ready, _worker_name, spawn, stop, worker_environment
from shared.celery_app import worker_command
from shared.settings import Settings, WorkerPool

# Worker names stay unique across every start in one test session.
_batches = itertools.count()


@dataclass(frozen=True)
class WorkerProcess:
    """One `celery worker` process and the settings it runs with (send to its queues with them)."""

    name: str
    settings: Settings
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        """Kill the worker and its pool children at once, as the OOM killer or a lost machine
        would: nothing is acknowledged or handed back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> None:
        """Warm shutdown, then SIGKILL if the worker is still there after the grace period."""
        stop(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def worker_processes(
    settings: Settings,
    directory: Path,
    count: int = 1,
    *,
    pool: WorkerPool = "threads",
    concurrency: int = 8,
    env: Mapping[str, str] | None = None,
    main_runs: bool = False,
    **setting_overrides: Any,
) -> Iterator[list[WorkerProcess]]:
    """`count` workers with this pool and concurrency, `setting_overrides` applied to their
    settings and `env` added to their environment, once every one answers a ping; all of them
    are stopped on the way out, whatever the test did to them. `main_runs`: main-run workers
    (`taskforce main-worker`) instead of subagent workers."""
    unknown = set(setting_overrides) - set(Settings.model_fields)
    if unknown:
        # Settings ignores unknown keys; a misspelt override would silently test nothing.
        raise TypeError(f"no such settings: {sorted(unknown)}")
    settings = Settings.model_validate(
        {**settings.model_dump(), "worker_pool": pool, "worker_concurrency": concurrency, **setting_overrides}
    )
    directory.mkdir(parents=True, exist_ok=True)
    environment = {**worker_environment(settings), **(env or {})}
    prefix = f"fault{next(_batches)}{'m' if main_runs else 'w'}"
    kind: dict[str, Any] = {"app": MAIN_RUNS_APP} if main_runs else {}
    queues = ["--queues", main_queue(settings)] if main_runs else []
    host = socket.gethostname()
    workers: list[WorkerProcess] = []
    try:
        for index in range(count):
            name = _worker_name(index, prefix)
            log = directory / f"worker-{prefix}{index}.log"
            args = [
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--hostname",
                name,
                # INFO shows when each job is received, which is how a test knows it runs.
                "--loglevel",
                "INFO",
                "--events",
                "--without-gossip",
                "--without-mingle",
            ]
            process = spawn(worker_command(*args, *queues, **kind), log, environment)
            workers.append(WorkerProcess(name.replace("%h", host), settings, log, process))
        _wait_until_ready(settings, [w.process for w in workers], [w.log for w in workers], prefix)
        yield workers
    finally:
        for worker in workers:
            worker.terminate()
