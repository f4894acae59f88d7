"""`taskforce prune` on a real Redis, a SQLite checkpoint file and a `file://` store: every kind
of state is listed, a dry run deletes nothing, and a prune deletes exactly what outlived its use."""

from __future__ import annotations

import inspect
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.store.base import PutOp
from pydantic import SecretStr
from typer.testing import CliRunner

from orchestrator.checkpoints import open_checkpointer
from orchestrator.cli.app import cli
from orchestrator.upkeep.prune import Holding, parse_duration, survey
from shared import keys
from shared.files import SharedFiles, read_text
from shared.files.local import LocalStore
from shared.ledger import Publication, Recording, State, open_ledger
from shared.settings import Settings
from shared.stores import SharedStore
from tests.support.environment import clear_settings
from tests.support.postgres import POSTGRES_URL, require_postgres

DAY_S = 86400


@pytest.fixture
def settings(unit_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    clear_settings(monkeypatch)
    variables = {
        "TASKFORCE_REDIS_URL": unit_redis,
        "TASKFORCE_FILES_URL": (tmp_path / "files").as_uri(),
        "TASKFORCE_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _checkpoint(settings: Settings, thread_id: str, age_s: float) -> None:
    checkpoint = empty_checkpoint()
    checkpoint["ts"] = (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat()
    with open_checkpointer(settings) as saver:
        saver.put({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, checkpoint, {}, {})


def _dead_letter(settings: Settings, delegation_id: str, parked_s_ago: float) -> None:
    ledger = open_ledger(settings)
    publication = Publication(
        delegation_id, json.dumps({"id": delegation_id}), "[shown]", "taskforce.sleeper"
    )
    ledger.record([Recording(publication, "sleeper", "", 1, guard_s=60, ttl_s=600)])
    assert ledger.finish(delegation_id, State.DEAD_LETTER, '{"summary": "died"}', ttl_s=60)
    parked_ms = ledger.server_ms() - int(parked_s_ago * 1000)
    ledger.client.zadd(keys.dead_letters(settings.queue_prefix), {delegation_id: parked_ms})


def _state(settings: Settings, tmp_path: Path) -> redis.Redis:
    """Some of every kind: old and new checkpoints, workspaces and dead letters, keys that expire,
    one leftover that lost its TTL, and long-term memory."""
    _checkpoint(settings, "old-run", age_s=10 * DAY_S)
    _checkpoint(settings, "new-run", age_s=60)
    files = SharedFiles(LocalStore(tmp_path / "files"))
    files.for_run("old-run").write("/notes.md", "old")
    files.for_run("new-run").write("/notes.md", "new")
    files.memories.write("/AGENTS.md", "remember this")
    ten_days_ago = time.time() - 10 * DAY_S
    os.utime(tmp_path / "files" / "runs" / "old-run" / "notes.md", (ten_days_ago, ten_days_ago))
    _dead_letter(settings, "parked-long-ago", parked_s_ago=8 * DAY_S)
    _dead_letter(settings, "parked-today", parked_s_ago=60)
    client = redis.Redis.from_url(settings.redis_url or "")
    prefix = settings.queue_prefix
    client.set(keys.metrics(prefix, "worker-1"), "1", ex=3600)
    client.set(keys.batch(prefix, "b1"), "1", ex=3600)
    client.xadd(keys.progress(prefix, "lost-its-ttl"), {"step": "1"})
    store = SharedStore.from_settings(settings)
    store.batch(
        [PutOp(("users", "u1"), "prefs", {"tone": "terse"}), PutOp(("cache",), "k", {"v": 1}, ttl=60)]
    )
    return client


def _by_kind(holdings: list[Holding]) -> dict[str, Holding]:
    return {holding.kind: holding for holding in holdings}


def test_a_dry_run_counts_what_a_prune_then_deletes(settings: Settings, tmp_path: Path) -> None:
    client = _state(settings, tmp_path)

    looked = _by_kind(survey(settings, delete=False))
    again = _by_kind(survey(settings, delete=False))
    pruned = _by_kind(survey(settings, delete=True))
    after = _by_kind(survey(settings, delete=False))

    assert looked == again  # a dry run changed nothing
    for kind, held, stale, left in [
        ("main-agent checkpoints", 2, 1, 1),
        ("run workspaces", 2, 1, 1),
        ("dead letters", 2, 1, 1),
        ("progress streams", 1, 0, 1),  # lost its TTL only just: see the next test
        ("process metrics", 1, 0, 1),
        ("submitted batches", 1, 0, 1),
        ("delegation records", 2, 0, 1),  # a dead letter's has no TTL on purpose, and goes with it
        ("store items with a TTL", 1, 0, 1),
    ]:
        assert (looked[kind].held, looked[kind].pruned) == (held, stale), kind
        assert pruned[kind].pruned == stale, kind
        assert (after[kind].held, after[kind].pruned) == (left, 0), kind
    assert (looked["long-term memory"].held, looked["long-term memory"].pruned) == (1, None)
    assert looked["store items without a TTL"].held == 1

    with open_checkpointer(settings) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": "old-run"}}) is None
        assert saver.get_tuple({"configurable": {"thread_id": "new-run"}}) is not None
    files = SharedFiles(LocalStore(tmp_path / "files"))
    assert read_text(files.for_run("new-run"), "/notes.md") == "new"
    assert read_text(files.memories, "/AGENTS.md") == "remember this"
    assert [letter.delegation_id for letter in open_ledger(settings).dead_letters()] == ["parked-today"]
    assert client.exists(keys.progress(settings.queue_prefix, "lost-its-ttl"))
    assert client.exists(keys.metrics(settings.queue_prefix, "worker-1"))


def test_a_key_without_a_ttl_is_left_while_it_was_touched_lately(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url or "")
    leftover = keys.paused_run(settings.queue_prefix, "thread-1", "latest")
    client.set(leftover, "checkpoint")

    survey(settings, older_than_s=3600, delete=True)
    assert client.exists(leftover)  # written just now, perhaps by a pipeline about to set its TTL
    survey(settings, older_than_s=0, delete=True)
    assert not client.exists(leftover)


def test_an_expired_store_item_is_swept(settings: Settings) -> None:
    store = SharedStore.from_settings(settings)
    store.batch([PutOp(("cache",), "k", {"v": 1}, ttl=1 / 600)])  # 100 ms
    time.sleep(0.2)

    looked = _by_kind(survey(settings, delete=False))["store items with a TTL"]
    pruned = _by_kind(survey(settings, delete=True))["store items with a TTL"]

    assert (looked.held, looked.pruned, pruned.pruned) == (1, 1, 1)
    assert store.census().items == 0


def test_every_redis_family_is_listed(settings: Settings) -> None:
    """A family added to `shared.keys` without a line in the prune's table fails here."""
    starts = [at.split("*")[0] for holding in survey(settings, delete=False) for at in holding.at.split(", ")]
    for name, build in inspect.getmembers(keys, inspect.isfunction):
        ids = len(inspect.signature(build).parameters) - 1
        key = build(settings.queue_prefix, *(["x"] * ids))
        assert any(key.startswith(start) or start.startswith(key) for start in starts), name


def test_the_command_lists_every_kind_and_says_a_dry_run_deletes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    _state(settings, tmp_path)

    result = CliRunner().invoke(cli, ["prune", "--dry-run"], terminal_width=200)

    assert result.exit_code == 0, result.output
    for holding in survey(settings, delete=False):
        assert holding.kind in result.output
    assert "would prune 3: nothing deleted" in result.output
    assert _by_kind(survey(settings, delete=False))["dead letters"].held == 2


def test_a_prune_in_embedded_mode_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings(monkeypatch)
    monkeypatch.setenv("TASKFORCE_DATA_DIR", str(tmp_path / "data"))

    result = CliRunner().invoke(cli, ["prune"], terminal_width=200)

    assert result.exit_code == 0, result.output
    assert "the embedded Redis keeps nothing between runs" in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * DAY_S), ("12h", 43200), ("90m", 5400), ("30s", 30), ("45", 45)]
)
def test_durations_read_as_people_write_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "d", "-1d", "1.5h"])
def test_a_duration_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_old_threads_are_pruned_from_postgres_checkpoints_too(settings: Settings) -> None:
    require_postgres()
    on_postgres = settings.model_copy(update={"database_url": SecretStr(POSTGRES_URL)})
    old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    _checkpoint(on_postgres, old, age_s=10 * DAY_S)
    _checkpoint(on_postgres, new, age_s=60)

    looked = _by_kind(survey(on_postgres, delete=False))["main-agent checkpoints"]
    survey(on_postgres, delete=True)

    assert looked.store.startswith("PostgreSQL postgresql://")
    assert looked.held >= 2
    assert (looked.pruned or 0) >= 1
    with open_checkpointer(on_postgres) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": old}}) is None
        assert saver.get_tuple({"configurable": {"thread_id": new}}) is not None
        saver.delete_thread(new)
