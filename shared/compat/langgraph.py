"""LangGraph internals taskforce relies on, written against LangGraph 1.2.

- The config keys of a graph's stream and durability: the relayed subagent stream
  (`orchestrator.subagent_stream`) reads the first to know that its caller streams subgraphs,
  and sets the second for the graph that replays a subagent's steps.
- `InMemoryStore`'s own filter and match rules, so that the Redis store (`shared.stores`) means
  by a filter or a match condition exactly what the in-memory store means."""

from __future__ import annotations

from langgraph._internal._constants import CONFIG_KEY_DURABILITY, CONFIG_KEY_STREAM
from langgraph.store.memory import _compare_values as compare_values
from langgraph.store.memory import _does_match as does_match

__all__ = ["CONFIG_KEY_DURABILITY", "CONFIG_KEY_STREAM", "compare_values", "does_match"]
