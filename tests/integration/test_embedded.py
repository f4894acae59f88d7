"""The embedded default and the CLI, as a user runs them: real processes, checked by pid."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from orchestrator.embedded import local_cluster
from shared.settings import Settings
from taskforce_demo.service_logs import SERVICES
from tests.support.environment import without_settings

pytestmark = pytest.mark.integration


def _gone(pids: list[int], within_s: float = 15.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        alive = [
            pid
            for pid in pids
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_embedded_mode_starts_redis_and_workers_and_stops_every_one(tmp_path: Path) -> None:
    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}  # e.g. the session's test worker
    with local_cluster(Settings(redis_url=None, data_dir=tmp_path), workers=2) as live:
        assert live.redis_url is not None
        assert redis.Redis.from_url(live.redis_url).ping()
        children = [child.pid for child in me.children(recursive=True) if child.pid not in before]
        commands = [" ".join(psutil.Process(pid).cmdline()) for pid in children]
        assert sum("redis-server" in c for c in commands) == 1
        assert sum("celery" in c and "worker" in c for c in commands) == 2

    assert _gone(children) == []
    assert {child.pid for child in me.children(recursive=True)} == before


def _cli(*args: str, data_dir: Path) -> subprocess.Popen[str]:
    env = without_settings()
    env["TASKFORCE_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_demo_runs_end_to_end_and_its_summary_covers_every_input(tmp_path: Path) -> None:
    demo = _cli("demo", data_dir=tmp_path)
    output, _ = demo.communicate(timeout=240)

    assert demo.returncode == 0, output
    assert "offline" in output
    summary = (tmp_path / "demo" / "results" / "SUMMARY.md").read_text()
    for service in SERVICES:
        assert f"{service}:" in summary, service
        assert (tmp_path / "demo" / "results" / f"{service}.md").read_text().startswith(service)
    assert f"{len(SERVICES)} of {len(SERVICES)} services analysed" in output


def test_ctrl_c_during_a_run_stops_everything_it_started(tmp_path: Path) -> None:
    demo = _cli("demo", data_dir=tmp_path)
    assert demo.stdout is not None
    started: list[int] = []
    for line in demo.stdout:
        if "Uploaded" in line:
            started = [child.pid for child in psutil.Process(demo.pid).children(recursive=True)]
            demo.send_signal(signal.SIGINT)
            break
    output, _ = demo.communicate(timeout=60)

    assert len(started) >= 3, output  # Redis and two workers
    assert demo.returncode == 130, output
    assert "interrupted" in output
    assert _gone(started) == []


def _shell(command: str, cwd: Path) -> subprocess.Popen[str]:
    """A command as a user pastes it: through a shell, with `taskforce` on PATH and no settings."""
    env = without_settings()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.Popen(
        command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_keep_leaves_an_embedded_runs_files_readable_by_the_command_it_prints(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    prompt = (
        "Ask the general-purpose subagent:\n- list /notes with ls and write the listing to /notes/listing.md"
    )
    run = _cli("run", prompt, "--workers", "1", "--keep", data_dir=data_dir)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 0, output

    lines = output.splitlines()
    (redis_line,) = [line for line in lines if line.startswith("Private Redis: ")]
    url = redis_line.removeprefix("Private Redis: ").partition(",")[0]
    assert url.startswith("redis://127.0.0.1:"), redis_line
    assert f"TASKFORCE_REDIS_URL={url} taskforce flower" in redis_line
    (command,) = [line.strip() for line in lines if "taskforce files ls" in line]
    assert shlex.split(command)[0] == f"TASKFORCE_FILES_URL={(data_dir / 'files').as_uri()}"

    # The run's Redis is gone: only the directory answers, in a shell that has no settings. Both
    # at once, as each spends seconds importing the agent stack.
    listing = _shell(command, cwd=tmp_path)
    reading = _shell(command.replace(" files ls ", " files cat ") + " /notes/listing.md", cwd=tmp_path)
    listed, listing_errors = listing.communicate(timeout=60)
    shown, reading_errors = reading.communicate(timeout=60)
    assert listing.returncode == 0, listing_errors
    assert "/notes/" in listed
    assert reading.returncode == 0, reading_errors
    assert "[offline model]" in shown
