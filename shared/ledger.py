"""The delegation lifecycle, kept in Redis: the one record both sides trust.

    sent ─▶ queued ─▶ running (leased) ─▶ reported
              ▲            │  lease lapsed, attempts left
              └────────────┘
                           ├─▶ dead_letter   (lease lapsed on the last attempt)
                           └─▶ (forgotten)   cancelled, or its report was read

One id, the delegation id, is also the Celery task id and names every key below
(`<ns>` is the queue prefix, `taskforce` by default; `shared.keys` builds them):

- `<ns>:dlg:<id>`, a hash: `state`, `kind` (a delegation, or a submitted main run: both live
  this lifecycle), `subagent`, `queue`, `payload` (the wire message, secrets
  encrypted) and `shown` (its display form) to publish it again, `reply_to` (the inbox of the
  process waiting for it), `attempts`, `max_attempts`, `guard_ms`, `owner` (the lease holder's
  token), `worker`, `report` (JSON, once finished), timestamps.
- `<ns>:leases`, a sorted set: running delegations by lease expiry (server time, ms). A worker
  process refreshes its leases every `refresh_s`; any process sweeping it finds the lapsed ones
  and hands them to another worker, or dead-letters them after `max_attempts`.
- `<ns>:inbox:<client>`, a list per waiting process: reports, pushed here by the same script
  that stores them, so a waiter blocks on one list for all of its delegations instead of
  polling each.
- `<ns>:dead`, a sorted set: dead-lettered ids, kept (with their payload) until someone
  requeues or drops them.
- `<ns>:serving:<queue>`, a sorted set: workers consuming a queue, by last announcement; an
  empty one means no live worker would ever take a job sent there.

Every transition is one Lua script, so the state, the lease and the inbox never disagree, and
every script reads the clock of the Redis server, so machines with skewed clocks agree on
when a lease lapsed. The lease is the lock: only a `queued` delegation can be claimed, so two
copies of one delegation never run at once, and a message that arrives for a delegation that
is running, finished, cancelled or unknown is acknowledged without running.

Keys that scripts derive from stored values (the inbox) are not declared to Redis: taskforce
needs one Redis, not a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, cast

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from shared import keys
from shared.metrics import LUA_COUNT, Counting
from shared.redis_exchange import LUA_NOW_MS
from shared.schemas import Limits
from shared.settings import Settings
from shared.timing import OUTAGE_POLL_S, outage_retries

# kombu's Redis transport keeps delivered, unacknowledged messages here (its default key names).
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"

# An inbox only speeds up waiting: the report stays in the record, where a waiter that missed
# the push (or a resumed process with an inbox of its own) finds it. The inbox of a process
# that died goes soon.
INBOX_TTL_S = 300


class State(StrEnum):
    """A delegation's state in its record: the scripts above and below write the same words."""

    QUEUED = "queued"
    RUNNING = "running"
    REPORTED = "reported"
    DEAD_LETTER = "dead_letter"


class Kind(StrEnum):
    """What a record's message runs: a subagent's delegation, or a submitted main-agent run
    (`taskforce submit`), which holds a lease, is handed over and is dead-lettered the same way."""

    DELEGATION = "delegation"
    MAIN_RUN = "main_run"


FINAL_STATES: frozenset[str] = frozenset({State.REPORTED, State.DEAD_LETTER})
"""States a record leaves only by being forgotten (or a dead letter by being retried)."""

ClaimOutcome = Literal["run", "gone", "running", "queued", "reported", "dead_letter"]


@dataclass(frozen=True)
class RecordView:
    """A delegation's record as its readers see it (`Ledger.snapshot`, `Ledger.records`): times
    are the Redis server's, in ms; a field the record lacks is empty (or None for a time)."""

    state: str
    attempts: int = 0
    worker: str = ""
    queued_at_ms: int | None = None
    claimed_at_ms: int | None = None
    report: str = ""
    subagent: str = ""
    queue: str = ""
    queue_timeout_ms: int = 0
    finished_at_ms: int | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "state",
        "attempts",
        "worker",
        "queued_at",
        "claimed_at",
        "report",
        "subagent",
        "queue",
        "guard_ms",
        "finished_at",
    )
    """The record's fields it is read from, in the order `of` takes them."""

    @classmethod
    def of(cls, row: Sequence[bytes | str | None]) -> RecordView:
        found = {name: as_text(value) for name, value in zip(cls.FIELDS, row, strict=True) if value}
        return cls(
            state=found.get("state", ""),
            attempts=int(found.get("attempts", 0)),
            worker=found.get("worker", ""),
            queued_at_ms=int(found["queued_at"]) if "queued_at" in found else None,
            claimed_at_ms=int(found["claimed_at"]) if "claimed_at" in found else None,
            report=found.get("report", ""),
            subagent=found.get("subagent", ""),
            queue=found.get("queue", ""),
            queue_timeout_ms=int(found.get("guard_ms", 0)),
            finished_at_ms=int(found["finished_at"]) if "finished_at" in found else None,
        )

    @property
    def reason(self) -> str:
        """Why a dead letter was parked: the summary of the report its last lapse wrote."""
        return str(json.loads(self.report).get("summary", "")) if self.report else ""


# Records delegations: nine arguments each, in the order of their keys. A delegation already
# recorded keeps its record (it gets the new reply_to) and answers its state; a new one answers ''.
_RECORD = """
local states = {}
for index, key in ipairs(KEYS) do
  local at = (index - 1) * 9
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'reply_to', ARGV[at + 3])
    states[index] = redis.call('HGET', key, 'state')
  else
    redis.call('HSET', key, 'state', 'queued', 'payload', ARGV[at + 1], 'queue', ARGV[at + 2],
               'reply_to', ARGV[at + 3], 'subagent', ARGV[at + 5], 'shown', ARGV[at + 6],
               'max_attempts', ARGV[at + 7], 'guard_ms', ARGV[at + 8], 'kind', ARGV[at + 9],
               'attempts', 0, 'queued_at', now)
    redis.call('EXPIRE', key, ARGV[at + 4])
    states[index] = ''
  end
end
return states
"""

RECORD_SLICE = 500

_CLAIM = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'gone', 0} end
if state ~= 'queued' then return {state, 0} end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'owner', ARGV[2], 'worker', ARGV[3], 'claimed_at', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
local waited = now - tonumber(redis.call('HGET', KEYS[1], 'queued_at') or now)
if KEYS[3] then count(KEYS[3], 5, math.max(0, waited) / 1000) end
return {'run', attempts, waited}
"""

_REFRESH = """
local lost = {}
for index = 2, #KEYS do
  local id, token = ARGV[index * 2 - 2], ARGV[index * 2 - 1]
  local owner = redis.call('HGET', KEYS[index], 'owner')
  if owner == token and redis.call('HGET', KEYS[index], 'state') == 'running' then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), id)
  else
    table.insert(lost, id)
  end
end
return lost
"""

_FINISH = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'report', ARGV[4], 'finished_at', now)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] == 'dead_letter' then
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  redis.call('PERSIST', KEYS[1])
else
  redis.call('HDEL', KEYS[1], 'payload')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
local inbox = redis.call('HGET', KEYS[1], 'reply_to')
if inbox and inbox ~= '' then
  redis.call('RPUSH', inbox, ARGV[4])
  redis.call('EXPIRE', inbox, ARGV[6])
end
local also = tonumber(ARGV[7])
for index = 1, also do
  redis.call('HSET', KEYS[3 + index], ARGV[6 + index * 2], ARGV[7 + index * 2])
end
if #KEYS > 3 + also then count(KEYS[#KEYS], 8 + also * 2, 0) end
return 1
"""

# A lapsed lease: hand the delegation back to the queue, or, on its last attempt, tell the
# sweeper to dead-letter it. Either way it stays in the lease set for a guard period, so that a
# sweeper which dies before publishing is covered by the next one.
_LAPSE = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > now then return {'live'} end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' and state ~= 'queued' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'gone'}
end
-- The dead worker's copy of the message is still in kombu's unacknowledged hash; left there,
-- the broker would deliver it again after the visibility timeout, only for it to be dropped.
local unacked = redis.call('HGETALL', KEYS[3])
for index = 1, #unacked, 2 do
  local ok, stored = pcall(cjson.decode, unacked[index + 1])
  if ok and type(stored) == 'table' and type(stored[1]) == 'table'
     and type(stored[1].headers) == 'table' and stored[1].headers.id == ARGV[1] then
    redis.call('HDEL', KEYS[3], unacked[index])
    redis.call('ZREM', KEYS[4], unacked[index])
  end
end
local f = redis.call('HMGET', KEYS[1], 'attempts', 'max_attempts', 'guard_ms', 'worker', 'subagent')
redis.call('ZADD', KEYS[2], now + tonumber(f[3]), ARGV[1])
if state == 'running' and tonumber(f[1]) >= tonumber(f[2]) then
  redis.call('HSET', KEYS[1], 'owner', 'sweeper')
  return {'dead', f[1], f[4] or '', f[5]}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'queued_at', now)
redis.call('HDEL', KEYS[1], 'owner')
return {'requeue', f[1], f[4] or '', f[5]}
"""

# A worker that stops hands a delegation back; a clean hand-back is not a lost attempt.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], 'state', 'queued', 'queued_at', now)
redis.call('HDEL', KEYS[1], 'owner')
redis.call('HINCRBY', KEYS[1], 'attempts', -1)
redis.call('ZADD', KEYS[2], now + tonumber(redis.call('HGET', KEYS[1], 'guard_ms')), ARGV[1])
return 1
"""

# Cancelling and collecting a read report are the same: forget the delegation. A message that
# arrives for it later finds no record and is dropped; a running copy loses its lease.
_FORGET = """
if redis.call('HGET', KEYS[1], 'state') == 'dead_letter' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"""

_REQUEUE_DEAD = """
if redis.call('HGET', KEYS[1], 'state') ~= 'dead_letter' then return false end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0, 'queued_at', now)
redis.call('HDEL', KEYS[1], 'report', 'reply_to')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_ANNOUNCE = """
for index = 1, #KEYS do
  redis.call('ZADD', KEYS[index], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[index], '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[index], ARGV[2])
end
return now
"""

_SERVING = """
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""

_LAPSED = """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
"""

# Messages of forgotten delegations still waiting in a queue: drop them, so that giving up
# leaves nothing queued. The list holds kombu's JSON envelopes; Celery puts the task id in
# `headers.id`.
_PURGE = """
local wanted = {}
for index = 1, #ARGV do wanted[ARGV[index]] = true end
local removed = 0
for _, raw in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local ok, envelope = pcall(cjson.decode, raw)
  if ok and type(envelope) == 'table' and type(envelope.headers) == 'table'
     and wanted[envelope.headers.id] then
    removed = removed + redis.call('LREM', KEYS[1], 1, raw)
  end
end
return removed
"""


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    attempt: int
    waited_ms: int = 0
    """With `run`: how long the delegation waited in its queue for this attempt."""


@dataclass(frozen=True)
class Lapse:
    """What a sweep decided for one lapsed lease."""

    delegation_id: str
    action: Literal["requeue", "dead"]
    attempts: int
    last_worker: str
    subagent_type: str


@dataclass(frozen=True)
class Publication:
    """Everything needed to publish a delegation's message (again). `message` and `limits` are
    `payload` as the sender built it, so that a first publication does not parse it back; one
    read from the ledger has neither."""

    delegation_id: str
    payload: str
    shown: str
    queue: str
    kind: Kind = Kind.DELEGATION
    message: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    limits: Limits | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Recording:
    """A delegation about to be published, as its record notes it. `guard_s` is how long its
    message may wait in a queue; `reply_to` is the inbox its report is pushed to ("" for none)."""

    publication: Publication
    subagent_type: str
    reply_to: str
    max_attempts: int
    guard_s: float
    ttl_s: int


@dataclass(frozen=True)
class DeadLetter:
    delegation_id: str
    subagent_type: str
    attempts: int
    last_worker: str
    reason: str
    parked_at_ms: int


def open_ledger(settings: Settings, *, riding_out_outages: bool = True) -> Ledger:
    """The ledger on the broker's Redis. Its commands retry through a restart or failover of up
    to `redis_outage` seconds; a caller that tracks outages itself (the report listener) asks
    for no retries."""
    if settings.redis_url is None:
        raise ValueError("the ledger needs TASKFORCE_REDIS_URL")
    retries = outage_retries(settings.redis_outage) if riding_out_outages else 0
    retry = Retry(ConstantBackoff(OUTAGE_POLL_S), retries=retries)
    client = redis.Redis.from_url(
        settings.redis_url,
        retry=retry,
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        health_check_interval=15,
        socket_keepalive=True,
    )
    return Ledger(client, settings.queue_prefix)


def _script(client: redis.Redis, body: str) -> Any:
    return client.register_script(LUA_NOW_MS + body)


class Ledger:
    """The Lua scripts above, bound to one Redis client and key namespace."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._leases = keys.leases(namespace)
        self._dead = keys.dead_letters(namespace)
        self._record = _script(client, _RECORD)
        self._claim = _script(client, LUA_COUNT + _CLAIM)
        self._refresh = _script(client, _REFRESH)
        self._finish = _script(client, LUA_COUNT + _FINISH)
        self._lapse = _script(client, _LAPSE)
        self._release = _script(client, _RELEASE)
        self._forget = _script(client, _FORGET)
        self._requeue_dead = _script(client, _REQUEUE_DEAD)
        self._announce = _script(client, _ANNOUNCE)
        self._serving = _script(client, _SERVING)
        self._lapsed = _script(client, _LAPSED)
        self._purge = _script(client, _PURGE)

    def key(self, delegation_id: str) -> str:
        return keys.delegation(self.namespace, delegation_id)

    def inbox(self, client_id: str) -> str:
        return keys.inbox(self.namespace, client_id)

    def serving_key(self, queue: str) -> str:
        return keys.serving(self.namespace, queue)

    # The orchestrator's side.

    def record(self, recordings: Sequence[Recording]) -> list[str | None]:
        """Note delegations before their messages are published, one round trip per 500. For each,
        None if it is new, else the state of the one already recorded under its id (a resumed run
        re-attaches to it instead of sending it twice)."""
        states: list[str | None] = []
        # In slices, so that one script never holds Redis up for long.
        for start in range(0, len(recordings), RECORD_SLICE):
            some = recordings[start : start + RECORD_SLICE]
            args: list[str | int] = []
            for r in some:
                p = r.publication
                args += [p.payload, p.queue, r.reply_to, r.ttl_s, r.subagent_type, p.shown, r.max_attempts]
                args += [int(r.guard_s * 1000), p.kind]
            answered = self._record(keys=[self.key(r.publication.delegation_id) for r in some], args=args)
            states += [as_text(state) or None for state in answered]
        return states

    def forget(self, delegation_ids: Sequence[str]) -> None:
        """Cancel, or collect after reading: the record and lease go; dead letters stay."""
        with self.client.pipeline(transaction=False) as pipe:
            for delegation_id in delegation_ids:
                self._forget(keys=[self.key(delegation_id), self._leases], args=[delegation_id], client=pipe)
            pipe.execute()

    def purge_queued(self, queue: str, delegation_ids: Sequence[str]) -> int:
        """Drop the waiting messages of these delegations from `queue`."""
        return int(self._purge(keys=[queue], args=list(delegation_ids)))

    def snapshot(self, delegation_ids: Sequence[str]) -> tuple[int, dict[str, RecordView]]:
        """The server's clock (ms), and each of these delegations still on record, in one round
        trip."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.time()
            for delegation_id in delegation_ids:
                pipe.hmget(self.key(delegation_id), RecordView.FIELDS)
            server_time, *rows = pipe.execute()
        records = {
            delegation_id: RecordView.of(row)
            for delegation_id, row in zip(delegation_ids, rows, strict=True)
            if row[0] is not None
        }
        return _ms(server_time), records

    def records(self, delegation_ids: Sequence[str]) -> dict[str, RecordView]:
        """Each of these delegations still on record (a snapshot, its clock aside)."""
        return self.snapshot(delegation_ids)[1]

    def serving(self, queue: str, silence_s: float) -> int:
        """Workers that announced they consume `queue` within the last `silence_s`."""
        return int(self._serving(keys=[self.serving_key(queue)], args=[int(silence_s * 1000)]))

    def publication(self, delegation_id: str) -> Publication | None:
        payload, shown, queue, kind = self.client.hmget(
            self.key(delegation_id), ["payload", "shown", "queue", "kind"]
        )
        if payload is None:
            return None
        kind = Kind(as_text(kind)) if kind is not None else Kind.DELEGATION
        return Publication(delegation_id, as_text(payload), as_text(shown or ""), as_text(queue), kind)

    # The worker's side.

    def claim(
        self, delegation_id: str, token: str, worker: str, lease_s: float, counting: Counting | None = None
    ) -> Claim:
        """`counting`: the claim's counts, added in the same step if it is ours to run."""
        outcome, attempt, *waited = self._claim(
            keys=[self.key(delegation_id), self._leases, *([counting.key] if counting else [])],
            args=[delegation_id, token, worker, int(lease_s * 1000), *(counting.args if counting else ())],
        )
        return Claim(cast(ClaimOutcome, as_text(outcome)), int(attempt), int(waited[0]) if waited else 0)

    def refresh(self, held: Iterable[tuple[str, str]], lease_s: float) -> list[str]:
        """Renew the leases this process holds (id, token); returns the ids it no longer holds
        (cancelled, forgotten or taken over), whose runs should stop."""
        pairs = list(held)
        if not pairs:
            return []
        keys = [self._leases, *(self.key(delegation_id) for delegation_id, _ in pairs)]
        args: list[Any] = [int(lease_s * 1000)]
        for delegation_id, token in pairs:
            args += [delegation_id, token]
        return [as_text(lost) for lost in self._refresh(keys=keys, args=args)]

    def finish(
        self,
        delegation_id: str,
        state: State,
        report: str,
        *,
        token: str = "",
        ttl_s: int,
        also: Sequence[tuple[str, str, str]] = (),
        counting: Counting | None = None,
    ) -> bool:
        """Store the one report of a delegation and push its id to the waiting inbox. Only the
        lease holder (or, with no token, a sweeper) may; a second report is refused. `also`:
        hash fields (key, field, value) written in the same step, and only if the report is
        stored, so that a worker whose lease was taken over cannot write them over the newer
        attempt's (a main run's result in its batch); `counting` likewise, the report's counts."""
        args: list[str | int | float] = [delegation_id, token, state, report, ttl_s, INBOX_TTL_S, len(also)]
        for _, name, value in also:
            args += [name, value]
        keys = [self.key(delegation_id), self._leases, self._dead, *(key for key, _, _ in also)]
        if counting is not None:
            keys.append(counting.key)
            args += counting.args
        return bool(self._finish(keys=keys, args=args))

    def release(self, delegation_id: str, token: str) -> bool:
        """Hand a delegation this process holds back to the queue (the caller publishes it)."""
        return bool(self._release(keys=[self.key(delegation_id), self._leases], args=[delegation_id, token]))

    def announce(self, worker: str, queues: Sequence[str], silence_s: float) -> None:
        if queues:
            self._announce(keys=[self.serving_key(q) for q in queues], args=[worker, int(silence_s * 1000)])

    def retire(self, worker: str, queues: Sequence[str]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrem(self.serving_key(queue), worker)
            pipe.execute()

    # Either side: sweeping lapsed leases.

    def lapsed(self, limit: int = 100) -> list[str]:
        return [as_text(delegation_id) for delegation_id in self._lapsed(keys=[self._leases], args=[limit])]

    def lapse(self, delegation_id: str) -> Lapse | None:
        keys = [self.key(delegation_id), self._leases, KOMBU_UNACKED, KOMBU_UNACKED_INDEX]
        row = [as_text(value) for value in self._lapse(keys=keys, args=[delegation_id])]
        if row[0] in {"requeue", "dead"}:
            return Lapse(delegation_id, cast(Any, row[0]), int(row[1]), row[2], row[3])
        return None

    def running_subagents(self) -> list[str]:
        """The subagent type of every delegation running under a lease now."""
        ids = [as_text(i) for i in self.client.zrange(self._leases, 0, -1)]
        with self.client.pipeline(transaction=False) as pipe:
            for delegation_id in ids:
                pipe.hget(self.key(delegation_id), "subagent")
            return [as_text(found) if found is not None else "unknown" for found in pipe.execute()]

    def served_queues(self) -> list[str]:
        """Every queue some worker has announced it consumes (`serving`)."""
        prefix = self.serving_key("")
        return sorted(as_text(key).removeprefix(prefix) for key in self.client.scan_iter(match=f"{prefix}*"))

    def oldest_queued_ms(self, queue: str) -> int | None:
        """When the oldest job waiting in `queue` was queued (server time, ms). kombu pushes on
        the left and takes from the right, so that job is the last; its Celery task id is its
        delegation id."""
        raw = self.client.lindex(queue, -1)
        if raw is None:
            return None
        try:
            delegation_id = json.loads(raw)["headers"]["id"]
        except (ValueError, KeyError, TypeError):
            return None
        queued_at = self.client.hget(self.key(str(delegation_id)), "queued_at")
        return int(queued_at) if queued_at is not None else None

    def server_ms(self) -> int:
        return _ms(self.client.time())

    # Dead letters.

    def dead_letters(self) -> list[DeadLetter]:
        ids = [as_text(i) for i in self.client.zrange(self._dead, 0, -1)]
        records = self.records(ids)
        letters = []
        for delegation_id in ids:
            # A parked id whose record is gone is still listed, so that it can be dropped.
            record = records.get(delegation_id, RecordView(state=""))
            parked_at = record.finished_at_ms or 0
            letters.append(
                DeadLetter(
                    delegation_id, record.subagent, record.attempts, record.worker, record.reason, parked_at
                )
            )
        return letters

    def dead_letter_reasons(self, delegation_ids: Sequence[str]) -> dict[str, str]:
        """Of these delegations, the dead letters, each with the reason it was parked."""
        records = self.records(delegation_ids)
        return {key: record.reason for key, record in records.items() if record.state == State.DEAD_LETTER}

    def dead_letter_ids(self, parked_for_s: float = 0) -> list[str]:
        """The dead letters parked at least `parked_for_s` seconds ago, by Redis's clock."""
        cutoff = self.server_ms() - int(parked_for_s * 1000)
        return [as_text(i) for i in self.client.zrangebyscore(self._dead, "-inf", cutoff)]

    def requeue_dead(self, delegation_id: str, ttl_s: int) -> bool:
        """Make a dead letter queued again (the caller publishes it); its attempts start over."""
        return bool(
            self._requeue_dead(keys=[self.key(delegation_id), self._dead], args=[delegation_id, ttl_s])
        )

    def drop_dead(self, delegation_id: str) -> bool:
        with self.client.pipeline() as pipe:
            pipe.zrem(self._dead, delegation_id)
            pipe.delete(self.key(delegation_id))
            removed, _ = pipe.execute()
        return bool(removed)


def _ms(server_time: tuple[int, int]) -> int:
    """Redis's `TIME` (seconds, microseconds) in milliseconds, the clock every script uses."""
    seconds, micros = server_time
    return int(seconds) * 1000 + int(micros) // 1000


def as_text(value: object) -> str:
    """A value from this module's Redis client, which returns bytes."""
    return value.decode() if isinstance(value, bytes) else str(value)
