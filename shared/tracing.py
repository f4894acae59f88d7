"""One LangSmith trace across machines: the caller's side.

deepagents runs a subagent inside its `task` tool run, so the subagent's graph, model calls and
tool calls nest under that run and inherit its tags and metadata. taskforce sends a delegation
before its `task` tool run exists (in `after_model`, so that the pool sees every delegation of a
model turn at once), so the message can only say *that* the caller traces, with the tags and
metadata of its config (`CallerRun`). Once the `task` tool run has started, it leaves its trace
headers (`RunTree.to_headers()`: the `langsmith-trace` dotted order and the `baggage` naming the
project) under `<ns>:trace:<delegation id>`; the worker files the subagent's runs under them
(`workers.tracing`). Nothing else of a trace passes through Redis.
"""

from __future__ import annotations

import json

import redis
from langchain_core.runnables import RunnableConfig
from langsmith.run_helpers import get_current_run_tree
from pydantic import JsonValue, TypeAdapter, ValidationError

from shared import keys
from shared.schemas import CallerRun

# Metadata LangChain, LangGraph and LangSmith put on every run themselves: each side sets its own.
_OWN_METADATA_PREFIXES = ("langgraph_", "lc_", "ls_", "checkpoint_")
_OWN_METADATA_KEYS = frozenset({"thread_id", "run_id", "revision_id"})
_JSON = TypeAdapter(JsonValue)


def caller_run(config: RunnableConfig) -> CallerRun:
    """What of the caller's config travels: its tags and the JSON values of its metadata."""
    metadata: dict[str, JsonValue] = {}
    for key, value in (config.get("metadata") or {}).items():
        if key.startswith(_OWN_METADATA_PREFIXES) or key in _OWN_METADATA_KEYS:
            continue
        try:
            metadata[key] = _JSON.validate_python(value, strict=True)
        except ValidationError:
            continue  # not JSON: it cannot travel, as callbacks cannot
    tags = tuple(dict.fromkeys(tag for tag in config.get("tags") or [] if not tag.startswith("seq:")))
    return CallerRun(traced=get_current_run_tree() is not None, tags=tags, metadata=metadata)


def trace_key(prefix: str, delegation_id: str) -> str:
    return keys.trace(prefix, delegation_id)


def leave_parent(client: redis.Redis, prefix: str, delegation_ids: list[str], ttl_s: float) -> None:
    """From inside the `task` tool run: its headers, for the workers of these delegations."""
    run = get_current_run_tree()
    if run is None or not delegation_ids:
        return
    headers = json.dumps(run.to_headers())
    with client.pipeline(transaction=False) as pipe:
        for delegation_id in delegation_ids:
            pipe.set(trace_key(prefix, delegation_id), headers, ex=max(1, int(ttl_s)))
        pipe.execute()
