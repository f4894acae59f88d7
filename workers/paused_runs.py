"""Where a subagent paused for human approval waits: a LangGraph checkpointer on the broker's
Redis, so the answer can resume it on any worker, after this one has gone.

Only subagents that can pause (an `interrupt_on`, inherited or their own) are compiled with it:
every other delegation runs without a checkpointer, as fast as before. A thread is one
delegation (its id); it expires `PAUSE_TTL_S` after its last step, so a question nobody answers
does not stay forever.

Each thread is three hashes: its checkpoints, its pending writes and its latest checkpoint per
namespace. A checkpoint is stored whole with its channel values (subagent threads are short),
serialised by LangGraph's own serializer, so the stored bytes mean the same to any worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.memory import InMemorySaver

from shared import keys
from shared.timing import PAUSE_TTL_S

_SEP = "\x00"


class RedisCheckpointSaver(BaseCheckpointSaver[str]):
    """Checkpoints of paused subagents. The async methods run the sync ones on the loop's
    executor: every delegation of a worker shares one event loop (`workers.event_loop`), which a
    Redis round trip, or a wait through a Redis outage, must not hold up."""

    def __init__(self, client: redis.Redis, namespace: str, ttl_s: int = PAUSE_TTL_S) -> None:
        super().__init__()
        self._client = client
        self._namespace = namespace
        self._ttl_s = ttl_s

    def _keys(self, thread_id: str) -> tuple[str, str, str]:
        return (
            keys.paused_run(self._namespace, thread_id, "checkpoints"),
            keys.paused_run(self._namespace, thread_id, "writes"),
            keys.paused_run(self._namespace, thread_id, "latest"),
        )

    def _dump(self, value: Any) -> bytes:
        kind, data = self.serde.dumps_typed(value)
        return kind.encode() + _SEP.encode() + data

    def _load(self, raw: bytes | str) -> Any:
        kind, _, data = (raw if isinstance(raw, bytes) else raw.encode()).partition(_SEP.encode())
        return self.serde.loads_typed((kind.decode(), data))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id, namespace = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoints, writes, latest = self._keys(thread_id)
        saved = {
            "checkpoint": checkpoint,
            "metadata": get_checkpoint_metadata(config, metadata),
            "parent": configurable.get("checkpoint_id"),
        }
        pipe = self._client.pipeline()
        pipe.hset(checkpoints, f"{namespace}{_SEP}{checkpoint['id']}", self._dump(saved))
        pipe.hset(latest, namespace, checkpoint["id"])
        for key in (checkpoints, writes, latest):
            pipe.expire(key, self._ttl_s)
        pipe.execute()
        return _config(thread_id, namespace, checkpoint["id"])

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        configurable = config["configurable"]
        thread_id, namespace = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        key = self._keys(thread_id)[1]
        pipe = self._client.pipeline()
        for index, (channel, value) in enumerate(writes):
            position = WRITES_IDX_MAP.get(channel, index)
            checkpoint_id = configurable["checkpoint_id"]
            field = _SEP.join([namespace, checkpoint_id, task_path, task_id, f"{position:+09d}"])
            saved = self._dump({"task_id": task_id, "channel": channel, "value": value})
            # As in LangGraph's own savers: a regular write is kept once, a special one replaced.
            if position >= 0:
                pipe.hsetnx(key, field, saved)
            else:
                pipe.hset(key, field, saved)
        pipe.expire(key, self._ttl_s)
        pipe.execute()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id, namespace = str(configurable["thread_id"]), configurable.get("checkpoint_ns", "")
        checkpoints, _, latest = self._keys(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id is None:
            newest = self._client.hget(latest, namespace)
            if newest is None:
                return None
            checkpoint_id = self._text(newest)
        raw = self._client.hget(checkpoints, f"{namespace}{_SEP}{checkpoint_id}")
        return None if raw is None else self._tuple(thread_id, namespace, checkpoint_id, raw)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        if config is None:
            raise ValueError("paused subagent checkpoints are listed one thread at a time")
        configurable = config["configurable"]
        thread_id, wanted_namespace = str(configurable["thread_id"]), configurable.get("checkpoint_ns")
        below = get_checkpoint_id(before) if before else None
        stored = self._client.hgetall(self._keys(thread_id)[0])
        found = 0
        for field in sorted(stored, key=lambda f: self._text(f).split(_SEP)[1], reverse=True):
            namespace, checkpoint_id = self._text(field).split(_SEP)
            if wanted_namespace is not None and namespace != wanted_namespace:
                continue
            if below is not None and checkpoint_id >= below:
                continue
            found_tuple = self._tuple(thread_id, namespace, checkpoint_id, stored[field])
            if filter and any(found_tuple.metadata.get(k) != v for k, v in filter.items()):
                continue
            yield found_tuple
            found += 1
            if limit is not None and found >= limit:
                return

    def _tuple(self, thread_id: str, namespace: str, checkpoint_id: str, raw: bytes | str) -> CheckpointTuple:
        saved = self._load(raw)
        prefix = f"{namespace}{_SEP}{checkpoint_id}{_SEP}"
        stored_writes = self._client.hgetall(self._keys(thread_id)[1])
        pending = [
            self._load(stored_writes[field])
            for field in sorted(stored_writes, key=self._text)
            if self._text(field).startswith(prefix)
        ]
        parent = saved["parent"]
        return CheckpointTuple(
            config=_config(thread_id, namespace, checkpoint_id),
            checkpoint=saved["checkpoint"],
            metadata=saved["metadata"],
            pending_writes=[(w["task_id"], w["channel"], w["value"]) for w in pending],
            parent_config=_config(thread_id, namespace, parent) if parent else None,
        )

    def delete_thread(self, thread_id: str) -> None:
        self._client.delete(*self._keys(thread_id))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        listed = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for found in listed:
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    # Versions as the in-memory saver makes them: strings that sort in order.
    get_next_version = InMemorySaver.get_next_version

    @staticmethod
    def _text(raw: bytes | str) -> str:
        return raw.decode() if isinstance(raw, bytes) else raw


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    configurable = {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": checkpoint_id}
    return {"configurable": configurable}
