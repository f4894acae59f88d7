"""One LangSmith trace across machines: the worker's side (the caller's is `shared.tracing`).

A delegation usually reaches its worker before the caller's `task` tool run has started, so the
worker cannot know yet where in the caller's trace the subagent's runs belong. It runs the
subagent under a stand-in parent and holds its runs back (`HeldRuns`) until the `task` run has
left its headers in Redis (`ParentWatcher`, one thread per process), then posts them under the
real parent: the same trace id, dotted order and project as if the subagent had run inside the
tool, as deepagents runs it. Runs that start after that go out as they happen. A caller that
never starts its tool run (it died) leaves the runs to go out as a trace of their own.

Tracing follows each side's own `LANGSMITH_*` variables: a worker that does not trace runs its
subagents untraced; one whose caller does not trace files them as root runs, as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from langsmith import Client, RunTree
from langsmith.run_helpers import tracing_context
from langsmith.run_trees import get_cached_client
from langsmith.utils import tracing_is_enabled

from shared.schemas import Delegation
from shared.timing import timing
from shared.tracing import trace_key

logger = logging.getLogger(__name__)

POLL_S = 0.2


class HeldRuns:
    """A stand-in for the LangSmith client of one delegation's runs: it keeps what the tracer
    posts until `release` names the real parent, then refiles and forwards it to `client`."""

    def __init__(self, client: Client, stand_in: RunTree) -> None:
        self._client = client
        self._stand_in = stand_in
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._parent: RunTree | None = None
        self._released = False
        self._lock = threading.Lock()

    def create_run(self, **fields: Any) -> None:
        self._hold_or_send("create", fields)

    def update_run(self, **fields: Any) -> None:
        self._hold_or_send("update", fields)

    def __getattr__(self, name: str) -> Any:
        # Everything else the tracer may ask of a client (URLs, flushing) is the real one's.
        return getattr(self._client, name)

    def release(self, parent: RunTree | None) -> None:
        """Send every held run under `parent`, or as a trace of their own without one."""
        with self._lock:
            if self._released:
                return
            self._parent, self._released = parent, True
            held, self._held = self._held, []
        for kind, fields in held:
            self._send(kind, fields)

    def _hold_or_send(self, kind: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if not self._released:
                self._held.append((kind, fields))
                return
        self._send(kind, fields)

    def _send(self, kind: str, fields: dict[str, Any]) -> None:
        refiled = self._refiled(fields)
        try:
            if kind == "create":
                self._client.create_run(**refiled)
            else:
                self._client.update_run(**refiled)
        except Exception as error:  # a trace is never worth a failed delegation
            logger.warning("could not send a run to LangSmith: %s", error)

    def _refiled(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The run as if its stand-in parent had been the real one (or absent)."""
        fields = dict(fields)
        stand_in, parent = self._stand_in, self._parent
        prefix = f"{stand_in.dotted_order}."
        dotted = str(fields.get("dotted_order") or "")
        own = dotted[len(prefix) :] if dotted.startswith(prefix) else dotted
        if str(fields.get("parent_run_id")) == str(stand_in.id):
            fields["parent_run_id"] = parent.id if parent is not None else None
        if parent is not None:
            fields["dotted_order"] = f"{parent.dotted_order}.{own}"
            fields["trace_id"] = parent.trace_id
            fields["session_name"] = parent.session_name
        else:
            fields["dotted_order"] = own
            fields["trace_id"] = own.split(".", 1)[0].split("Z", 1)[-1]
        fields.pop("project_name", None)
        fields.pop("session_id", None)
        return fields


class ParentWatcher:
    """Waits, for every delegation of this process whose caller traces, for the caller's `task`
    run to leave its headers; a thread of its own, started with the first delegation, so that
    neither the event loop nor a Celery slot ever waits for a trace."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._waiting: dict[str, tuple[HeldRuns, float]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, delegation_id: str, runs: HeldRuns, give_up_in_s: float) -> None:
        with self._lock:
            self._waiting[delegation_id] = (runs, time.monotonic() + give_up_in_s)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="taskforce-trace-parents", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(POLL_S)
            self._wake.clear()
            with self._lock:
                waiting = dict(self._waiting)
            if not waiting:
                continue
            try:
                found = self._redis.mget([trace_key(self._prefix, key) for key in waiting])
            except redis.RedisError as error:
                logger.warning("could not look up callers' trace parents: %s", error)
                continue
            now = time.monotonic()
            for (delegation_id, (runs, give_up_at)), raw in zip(waiting.items(), found, strict=True):
                parent = _parent_of(raw)
                if parent is None and now < give_up_at:
                    continue
                runs.release(parent)
                with self._lock:
                    self._waiting.pop(delegation_id, None)


def _parent_of(raw: bytes | str | None) -> RunTree | None:
    if raw is None:
        return None
    try:
        headers: Mapping[str | bytes, str | bytes] = json.loads(raw)
        return RunTree.from_headers(headers)
    except (ValueError, TypeError) as error:
        logger.warning("ignored a caller's trace parent that does not parse: %s", error)
        return None


@contextlib.contextmanager
def filed_under_caller(delegation: Delegation, watcher: ParentWatcher | None) -> Iterator[None]:
    """Around a subagent's run: its runs go under the caller's `task` run once that is known,
    or on their own once the delegation could no longer be waited for."""
    if not delegation.caller.traced or watcher is None or not tracing_is_enabled():
        yield
        return
    stand_in = RunTree(
        id=uuid.uuid4(),
        name="task",
        run_type="tool",
        start_time=datetime.now(UTC),
    )
    runs = HeldRuns(get_cached_client(), stand_in)
    stand_in.ls_client = runs  # the tracer posts through its parent's client
    watcher.watch(delegation.id, runs, timing(delegation.limits).outstanding_s)
    with tracing_context(parent=stand_in, enabled=True):
        yield
