"""A delegation's progress, step by step: what the subagent's model said and what its tools
returned, as the worker runs it, for a caller that streams with `subgraphs=True`.

deepagents' in-process subagents show each of their steps in the parent's stream, under the
`task` call's namespace. A subagent on a worker is another process; it appends its steps to a
Redis stream of the delegation (`<prefix>:progress:<delegation id>`), which the `task` call
reads while it waits and replays into its own stream. Only delegations whose caller asked for
it publish anything: every other delegation costs no more than before.

Steps travel as LangChain's message dicts with the run's secret values scrubbed; the stream
expires with the delegation's record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict, messages_to_dict

from shared import keys
from shared.context import redact
from shared.ledger import as_text

RELAYED_NODES = ("model", "tools")
"""The steps of a deepagents subagent that carry its conversation; middleware hooks do not."""
WAITING_NODE = "model_limits"
"""taskforce's own step: a model call waits for the pool's model limits (`shared.rate_limiter`)."""
_BLOCK_MS = 100


def progress_key(namespace: str, delegation_id: str) -> str:
    return keys.progress(namespace, delegation_id)


@dataclass(frozen=True)
class Step:
    node: str
    messages: list[BaseMessage]


class ProgressPublisher:
    """The worker's side: one per delegation that asked for its progress."""

    def __init__(
        self, client: redis.Redis, namespace: str, delegation_id: str, secrets: Sequence[str], ttl_s: int
    ) -> None:
        self._client = client
        self._key = progress_key(namespace, delegation_id)
        self._secrets = list(secrets)
        self._ttl_s = ttl_s

    def waiting(self, model: str, expected_s: float) -> None:
        """A step the caller's progress line shows; its stream never replays it (not a node)."""
        self.publish(WAITING_NODE, [AIMessage(content=f"waiting for {model}'s limits (~{expected_s:.0f} s)")])

    def publish(self, node: str, messages: Sequence[BaseMessage]) -> None:
        text = redact(json.dumps(messages_to_dict(list(messages))), self._secrets)
        pipe = self._client.pipeline()
        pipe.xadd(self._key, {"node": node, "messages": text})
        pipe.expire(self._key, self._ttl_s)
        pipe.execute()


class ProgressReader:
    """The caller's side: the steps not yet read, waiting up to a tenth of a second for more."""

    def __init__(self, client: redis.Redis, namespace: str, delegation_id: str) -> None:
        self._client = client
        self._key = progress_key(namespace, delegation_id)
        self._last = "0-0"

    def read(self, *, block: bool = True) -> list[Step]:
        found: list[Any] = self._client.xread({self._key: self._last}, block=_BLOCK_MS if block else None)  # type: ignore[assignment]
        steps: list[Step] = []
        for _, entries in found or []:
            for entry_id, fields in entries:
                self._last = as_text(entry_id)
                messages = messages_from_dict(json.loads(fields[b"messages"]))
                steps.append(Step(as_text(fields[b"node"]), messages))
        return steps

    def forget(self) -> None:
        """The steps were replayed: nobody reads them again."""
        self._client.delete(self._key)
