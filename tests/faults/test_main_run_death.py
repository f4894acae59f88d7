"""Main-run workers die or freeze mid-run (`taskforce submit`), with real main-run and subagent
worker processes, checkpoints in PostgreSQL as across machines. Each test counts how many times
every subagent body ran: a run handed over resumes from its checkpoint, re-attaching to its
delegations, and never sends one twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.batch.submissions import batch_results, batch_status, submit_batch
from orchestrator.embedded import worker_pool
from orchestrator.upkeep.dead_letters import list_dead_letters, requeue_dead_letter
from shared.ledger import RecordView, as_text, open_ledger
from shared.settings import Settings
from tests.faults.processes import WorkerProcess, worker_processes
from tests.faults.support import RedisProcess, fault_settings, runs, wait_for
from tests.support.postgres import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.faults

ITEM = "one"


def _settings(server: RedisProcess, tmp_path: Path, **overrides: object) -> Settings:
    require_postgres()
    return fault_settings(server, tmp_path, database_url=POSTGRES_URL, **overrides)


def _tasks(long_s: float) -> tuple[str, str]:
    """A delegation that finishes at once, and one still running when the main run's worker goes."""
    tag = uuid.uuid4().hex[:6]
    return f"sleep=0.2 quick {tag}", f"sleep={long_s:g} long {tag}"


def _submit(settings: Settings, tmp_path: Path, tasks: tuple[str, ...]) -> str:
    batch = tmp_path / "in.jsonl"
    prompt = "Ask the counted subagent:\n" + "".join(f"- {task}\n" for task in tasks)
    batch.write_text(json.dumps({"id": ITEM, "prompt": prompt}) + "\n")
    return submit_batch(settings, batch, batch_id=f"batch-{uuid.uuid4().hex[:8]}").batch_id


def _record(settings: Settings, batch_id: str) -> RecordView | None:
    _, records = open_ledger(settings).snapshot([f"{batch_id}:{ITEM}"])
    return records.get(f"{batch_id}:{ITEM}")


def _running(settings: Settings, batch_id: str, attempts: int) -> bool:
    record = _record(settings, batch_id)
    return record is not None and record.state == "running" and record.attempts == attempts


def _holder(settings: Settings, batch_id: str, mains: list[WorkerProcess]) -> WorkerProcess:
    record = _record(settings, batch_id)
    assert record is not None
    return next(main for main in mains if main.name == record.worker)


def _quick_reported(settings: Settings, quick: str) -> bool:
    """The quick delegation has reported (its record says so) while the run still waits."""
    ledger = open_ledger(settings)
    prefix = ledger.key("")
    ids = [as_text(key).removeprefix(prefix) for key in ledger.client.keys(prefix + "*")]
    _, records = ledger.snapshot(ids)
    return runs(settings, quick) == 1 and any(
        r.state == "reported" and r.subagent == "counted" for r in records.values()
    )


def _started(settings: Settings, batch_id: str, quick: str, long: str) -> None:
    wait_for(lambda: _running(settings, batch_id, 1), 60, "the main run to start")
    wait_for(lambda: runs(settings, long) == 1 and _quick_reported(settings, quick), 60, "both delegations")


def _finished(settings: Settings, batch_id: str, timeout: float) -> None:
    wait_for(lambda: batch_status(settings, batch_id).finished, timeout, f"batch {batch_id} to finish")


@dataclass(frozen=True)
class _UnderWay:
    """A submitted run whose quick delegation has reported and whose long one still runs."""

    batch_id: str
    quick: str
    long: str
    mains: list[WorkerProcess]
    holder: WorkerProcess
    """The main-run worker running it."""


@contextlib.contextmanager
def _under_way(settings: Settings, tmp_path: Path, long_s: float) -> Iterator[_UnderWay]:
    """One subagent worker, two main-run workers, and a run on one of them, caught mid-way."""
    quick, long = _tasks(long_s)
    with (
        worker_pool(settings, tmp_path, 1),
        worker_processes(settings, tmp_path / "m", 2, main_runs=True) as mains,
    ):
        batch_id = _submit(settings, tmp_path, (quick, long))
        _started(settings, batch_id, quick, long)
        yield _UnderWay(batch_id, quick, long, mains, _holder(settings, batch_id, mains))


def test_a_killed_main_run_workers_run_resumes_on_another_within_30_s(
    server: RedisProcess, tmp_path: Path
) -> None:
    """Default lease. The quick delegation had reported before the kill: the resumed run takes
    its answer and never sends it again; the long one it re-attaches to while it runs."""
    settings = _settings(server, tmp_path)
    with _under_way(settings, tmp_path, 20) as run:
        run.holder.kill9()
        killed_at = time.monotonic()
        wait_for(lambda: _running(settings, run.batch_id, 2), 60, "another main-run worker to take the run")
        handed_over_s = time.monotonic() - killed_at
        print(f"main run handed over {handed_over_s:.1f} s after its worker was killed")
        _finished(settings, run.batch_id, 60)
        taker = _holder(settings, run.batch_id, run.mains)

    assert handed_over_s < 30, handed_over_s
    assert taker is not run.holder
    assert batch_status(settings, run.batch_id).counts == {"ok": 1}
    (result,) = batch_results(settings, run.batch_id)
    assert result.status == "ok", result
    assert [d.status for d in result.delegations] == ["ok", "ok"]
    assert (runs(settings, run.quick), runs(settings, run.long)) == (1, 1)


def test_a_frozen_main_run_worker_that_wakes_writes_nothing_over_the_newer_attempt(
    server: RedisProcess, tmp_path: Path
) -> None:
    """SIGSTOP past the lease: another worker resumes the run and stores its result; the frozen
    one, woken, finds the run taken and stops, and the stored result is the newer attempt's."""
    settings = _settings(server, tmp_path, lease=3.0)
    with _under_way(settings, tmp_path, 10) as run:
        frozen = run.holder
        os.killpg(frozen.pid, signal.SIGSTOP)
        try:
            wait_for(
                lambda: _running(settings, run.batch_id, 2), 60, "another main-run worker to take the run"
            )
            _finished(settings, run.batch_id, 60)
            (stored,) = batch_results(settings, run.batch_id)
        finally:
            os.killpg(frozen.pid, signal.SIGCONT)
        wait_for(
            lambda: (
                "taken over by another worker" in frozen.log_text() or "came too late" in frozen.log_text()
            ),
            30,
            "the woken worker to find its run taken",
        )
        time.sleep(2)  # whatever the woken attempt would still write, it has had the time to
        (after,) = batch_results(settings, run.batch_id)
        record = _record(settings, run.batch_id)

    assert stored.status == "ok", stored
    assert after == stored
    assert record is not None
    assert record.worker != frozen.name
    assert batch_status(settings, run.batch_id).counts == {"ok": 1}
    assert (runs(settings, run.quick), runs(settings, run.long)) == (1, 1)


def test_a_run_whose_workers_keep_dying_is_dead_lettered_and_runs_again_when_retried(
    server: RedisProcess, tmp_path: Path
) -> None:
    settings = _settings(server, tmp_path, lease=2.0, max_attempts=2)
    quick, long = _tasks(8)
    with worker_pool(settings, tmp_path, 1):
        with worker_processes(settings, tmp_path / "m", 2, main_runs=True) as mains:
            batch_id = _submit(settings, tmp_path, (quick, long))
            _started(settings, batch_id, quick, long)
            _holder(settings, batch_id, mains).kill9()
            wait_for(lambda: _running(settings, batch_id, 2), 60, "the second attempt")
            _holder(settings, batch_id, mains).kill9()
            wait_for(lambda: batch_status(settings, batch_id).finished, 60, "the run to be dead-lettered")
        parked = batch_status(settings, batch_id)
        (failed,) = batch_results(settings, batch_id)
        (letter,) = list_dead_letters(settings)
        with worker_processes(settings, tmp_path / "again", 1, main_runs=True):
            requeue_dead_letter(settings, letter.delegation_id)
            _finished(settings, batch_id, 60)

    assert parked.counts == {"dead_letter": 1}
    assert failed.status == "failed", failed
    assert "dead-letters" in (failed.error or ""), failed
    assert (letter.delegation_id, letter.subagent_type, letter.attempts) == (f"{batch_id}:{ITEM}", "main", 2)
    assert batch_status(settings, batch_id).counts == {"ok": 1}
    (result,) = batch_results(settings, batch_id)
    assert result.status == "ok", result
    assert (runs(settings, quick), runs(settings, long)) == (1, 1)


def test_a_main_run_worker_stopped_warmly_hands_its_run_back_after_the_grace(
    server: RedisProcess, tmp_path: Path
) -> None:
    """SIGTERM, as `docker stop` or systemd sends it: the worker gives the run its grace, then
    hands it back instead of waiting out the long delegation. Another worker resumes it from its
    checkpoint with its attempt not spent, and every body runs once."""
    settings = _settings(server, tmp_path, worker_shutdown_grace=2.0)
    with _under_way(settings, tmp_path, 20) as run:
        leaving = run.holder
        os.kill(leaving.pid, signal.SIGTERM)
        stopped_at = time.monotonic()
        wait_for(lambda: not leaving.alive(), 15, "the stopping main-run worker to exit")
        stopped_in = time.monotonic() - stopped_at
        wait_for(
            lambda: (
                _running(settings, run.batch_id, 1)
                and _holder(settings, run.batch_id, run.mains) is not leaving
            ),
            30,
            "the other main-run worker to resume the run",
        )
        _finished(settings, run.batch_id, 60)
        log = leaving.log_text()

    print(f"the stopping main-run worker exited {stopped_in:.1f} s after SIGTERM")
    assert "back to the queue: this worker is stopping" in log
    (result,) = batch_results(settings, run.batch_id)
    assert result.status == "ok", result
    assert [d.status for d in result.delegations] == ["ok", "ok"]
    assert (runs(settings, run.quick), runs(settings, run.long)) == (1, 1)
