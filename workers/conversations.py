"""The conversations of async tasks' subagents, kept on the broker's Redis between runs.

deepagents runs an async subagent on a thread of an Agent Protocol server, and a follow-up
(`update_async_task`) is a new run on that thread: the subagent sees its whole conversation
plus the new message. A taskforce task's runs are delegations that may land on any worker, so
each run that finishes keeps the messages it ended with here, under the task and its own
delegation id, and the follow-up names the run it continues (`Delegation.continues`).

Keyed by run rather than one list per task, so that a run attempted twice (its worker died)
starts from the same messages both times, and a run cancelled part-way never leaves half a
turn for the next one. A task's conversation is one hash, `<prefix>:conversation:<task id>`,
expiring `TASKFORCE_RESULT_EXPIRES` after its last run, like the task's reports. Secret values
of the run's context are scrubbed before anything is stored: at rest in Redis they only ever
travel sealed, and the next run gets them again from its own context.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import redis
from langchain_core.messages import BaseMessage, messages_from_dict, messages_to_dict

from shared import keys
from shared.context import redact


class ConversationGoneError(LookupError):
    """A follow-up continues a run whose messages are no longer kept (expired)."""


class Conversations:
    def __init__(self, client: redis.Redis, namespace: str, ttl_s: int) -> None:
        self._client = client
        self._namespace = namespace
        self._ttl_s = ttl_s

    def key(self, task_id: str) -> str:
        return keys.conversation(self._namespace, task_id)

    def load(self, task_id: str, run_id: str) -> list[BaseMessage]:
        raw = self._client.hget(self.key(task_id), run_id)
        if raw is None:
            raise ConversationGoneError(
                f"the conversation of task {task_id} up to run {run_id} is no longer kept "
                "(TASKFORCE_RESULT_EXPIRES); start a new task"
            )
        return messages_from_dict(json.loads(raw))

    def save(
        self, task_id: str, run_id: str, messages: Sequence[BaseMessage], secrets: Iterable[str] = ()
    ) -> None:
        # Scrubbed as they appear inside JSON strings, escapes included.
        text = redact(json.dumps(messages_to_dict(list(messages))), [json.dumps(s)[1:-1] for s in secrets])
        with self._client.pipeline() as pipe:
            pipe.hset(self.key(task_id), run_id, text)
            pipe.expire(self.key(task_id), self._ttl_s)
            pipe.execute()
