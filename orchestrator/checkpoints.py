"""Where the main agent's runs are checkpointed, so that a run the CLI, a batch or a submitted
job started survives its process: PostgreSQL when `TASKFORCE_DATABASE_URL` is set (shared by
orchestrators on many machines), else SQLite in the data directory (one machine).

Only graph state is checkpointed: messages and taskforce's delegation handles. The runtime context,
where secrets travel, is never part of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from shared.postgres import DatabaseError, open_with_tables
from shared.settings import Settings
from shared.urls import mask_url

SQLITE_FILE = "checkpoints.sqlite"


class CheckpointsConfigError(RuntimeError):
    """The checkpoint database cannot be opened."""


class UnknownRunError(LookupError):
    """A run to resume that the checkpoints do not hold."""


def require_run(settings: Settings, saver: BaseCheckpointSaver[str], run_id: str) -> None:
    if saver.get_tuple({"configurable": {"thread_id": run_id}}) is None:
        raise UnknownRunError(f"no run {run_id!r} to resume in {checkpoints_location(settings)}")


def checkpoints_location(settings: Settings) -> str:
    """What to show a user: the database with its password masked."""
    if settings.database_url is not None:
        return mask_url(settings.database_url.get_secret_value())
    return str(checkpoints_file(settings))


def checkpoints_file(settings: Settings) -> Path:
    """The SQLite file, used unless `TASKFORCE_DATABASE_URL` is set."""
    return settings.data_dir / SQLITE_FILE


@contextlib.contextmanager
def open_checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver[str]]:
    if settings.database_url is not None:
        with _postgres(settings.database_url.get_secret_value()) as saver:
            yield saver
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # One connection shared by a batch's threads: SqliteSaver serialises them with its lock.
    with SqliteSaver.from_conn_string(str(checkpoints_file(settings))) as saver:
        yield saver


@contextlib.contextmanager
def _postgres(url: str) -> Iterator[BaseCheckpointSaver[str]]:
    from langgraph.checkpoint.postgres import PostgresSaver

    try:
        pool, saver = open_with_tables(url, "the checkpoint database", PostgresSaver)  # type: ignore[arg-type]
    except DatabaseError as error:
        raise CheckpointsConfigError(str(error)) from error
    with pool:
        yield saver
