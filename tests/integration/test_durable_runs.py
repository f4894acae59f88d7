"""Durable runs on both checkpoint stores, SQLite in the data directory and PostgreSQL: a
`taskforce run` SIGKILLed midway resumes by its id without running any delegation twice, and
no secret from the runtime context ever reaches a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from orchestrator.batch.run import run_batch
from orchestrator.embedded import worker_environment
from shared.settings import Settings
from tests.faults.support import runs, wait_for
from tests.integration.conftest import Cluster
from tests.support.postgres import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.integration

SECRET = "sk-DURABLE-SECRET-123"


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Settings:
    settings = cluster.settings.model_copy(update={"data_dir": tmp_path})
    if request.param == "postgres":
        require_postgres()
        settings = settings.model_copy(update={"database_url": SecretStr(POSTGRES_URL)})
    return settings


def _cli_environment(settings: Settings) -> dict[str, str]:
    env = worker_environment(settings)
    if settings.database_url is not None:  # the orchestrator's own: not in a worker's environment
        env["TASKFORCE_DATABASE_URL"] = settings.database_url.get_secret_value()
    return env


def _stored_checkpoints(settings: Settings, thread_prefix: str) -> bytes:
    """Everything the checkpoint store holds for these threads, as bytes to search."""
    if settings.database_url is None:
        return b"".join(path.read_bytes() for path in settings.data_dir.glob("checkpoints.sqlite*"))
    held: list[bytes] = []
    with psycopg.connect(POSTGRES_URL) as connection:
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            rows = connection.execute(
                f"SELECT * FROM {table} WHERE thread_id LIKE %s",
                (thread_prefix + "%",),
            ).fetchall()
            held.extend(repr(row).encode() for row in rows)
    return b"".join(held)


def test_a_killed_run_resumes_by_its_id_without_running_anything_twice(durable: Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    quick, slow = f"sleep=0.2 quick {tag}", f"sleep=4 slow {tag}"
    env = _cli_environment(durable)
    command = [sys.executable, "-m", "orchestrator", "run", "--workers", "0"]
    prompt = f"Ask the counted subagent:\n- {quick}\n- {slow}"
    first = subprocess.Popen([*command, prompt], env=env, stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    run_id = next(line.split()[1].rstrip(";") for line in first.stdout if line.startswith("Run "))
    wait_for(lambda: runs(durable, quick) == 1 and runs(durable, slow) == 1, 60, "both jobs to start")
    first.kill()
    first.communicate()  # waits, and closes its pipes

    resumed = subprocess.run(
        [*command, "--resume", run_id], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "2 delegations in" in resumed.stdout, resumed.stdout
    assert (runs(durable, quick), runs(durable, slow)) == (1, 1)


def test_no_secret_from_the_context_reaches_a_checkpoint_or_the_results(
    durable: Settings, tmp_path: Path
) -> None:
    batch, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    item = {
        "id": "s",
        "prompt": "Ask the researcher subagent:\n- look around",
        "context": {"api_key": SECRET},
    }
    batch.write_text(json.dumps(item) + "\n")

    outcome = run_batch(durable, batch, out)

    (result,) = outcome.results
    assert result.status == "ok", result
    stored = _stored_checkpoints(durable, outcome.batch_id)
    assert b"look around" in stored  # the checkpoints were searched where they are
    assert SECRET.encode() not in stored
    assert SECRET not in out.read_text()
