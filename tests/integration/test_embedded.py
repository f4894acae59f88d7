"""The embedded default and the CLI, as a user runs them: real processes, checked by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from orchestrator.embedded import local_cluster
from shared.demo.logs import SERVICES
from shared.settings import Settings

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
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKFORCE_")}
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
