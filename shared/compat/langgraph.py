"""LangGraph internals taskforce relies on, written against LangGraph 1.2.

- The config keys of a graph's stream and durability: the relayed subagent stream
  (`orchestrator.delegation.stream`) reads the first to know that its caller streams subgraphs,
  and sets the second for the graph that replays a subagent's steps.
- `InMemoryStore`'s own filter and match rules, so that the Redis store (`shared.stores`) means
  by a filter or a match condition exactly what the in-memory store means.
- The thread ids a SQLite or PostgreSQL checkpointer holds, which no saver lists: read from the
  `checkpoints` table both create, through each saver's own cursor (`taskforce prune`)."""

from __future__ import annotations

from typing import Any

from langgraph._internal._constants import CONFIG_KEY_DURABILITY, CONFIG_KEY_STREAM
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.memory import _compare_values as compare_values
from langgraph.store.memory import _does_match as does_match

__all__ = ["CONFIG_KEY_DURABILITY", "CONFIG_KEY_STREAM", "compare_values", "does_match", "thread_ids"]

_THREADS = "SELECT DISTINCT thread_id FROM checkpoints"


def thread_ids(saver: BaseCheckpointSaver[Any]) -> list[str]:
    """Every thread `saver` holds a checkpoint of: a SQLite or a PostgreSQL saver."""
    if isinstance(saver, SqliteSaver):
        with saver.cursor(transaction=False) as cursor:
            cursor.execute(_THREADS)
            return [str(row[0]) for row in cursor.fetchall()]
    from langgraph.checkpoint.postgres import PostgresSaver

    if isinstance(saver, PostgresSaver):
        with saver._cursor() as cursor:
            cursor.execute(_THREADS)
            return [str(row["thread_id"]) for row in cursor.fetchall()]
    raise TypeError(f"cannot list the threads of a {type(saver).__name__}")
