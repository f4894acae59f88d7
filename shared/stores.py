"""The LangGraph store (`store=`) of the main agent and of every subagent, on every worker.

deepagents hands the `store` given to `create_deep_agent` to its subagents' tools as
`runtime.store`. A store object cannot travel to a worker, but the Redis it keeps its items in
can be reached from everywhere: `SharedStore.from_settings(settings)` opens the store on
`TASKFORCE_REDIS_URL` under `<TASKFORCE_QUEUE_PREFIX>:store`, and every worker opens the very
same one from the same settings. `create_orchestrator(store=...)` accepts only such a store.

Layout, for the key prefix `p` (`<queue prefix>:store`):

- `p:i:<id>`: one hash per item, `<id>` the JSON `[namespace, key]`: `v` its value (JSON), `c`
  and `u` created and updated (ms, on the Redis server's clock), `t` its TTL (ms) if it has
  one, `n` and `k` its namespace and key;
- `p:k:<namespace>`: a sorted set of the namespace's keys, by last update;
- `p:ns`: a sorted set of the namespaces holding items, all scored 0 so that a prefix is a
  lexicographic range;
- `p:exp`: a sorted set of the ids of items with a TTL, by when they expire.

A namespace is stored as its labels joined by `.`, which LangGraph forbids inside a label
(`validate_op_namespace`, checked for every op), so text and tuple map one to one and the
namespaces under a prefix `a.b` are `a.b` itself and the range [`a.b.`, `a.b/`). Searching
reads sorted sets and the items it returns, never the keyspace.

What each op means is `InMemoryStore`'s, langgraph's reference store: reads in a batch see the
state before the batch's puts, the last put of an item in a batch wins, and `filter` and
`match_conditions` are evaluated by InMemoryStore's own functions (equality, nested dicts,
`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`; prefix and suffix with `*`). Where a dict in memory
and a database differ, this follows langgraph's database stores (SQLite, Postgres): search
returns the most recently updated items first, a put keeps the item's `created_at`,
`list_namespaces` lists namespaces that hold items, and a TTL (minutes) is refreshed by reads
unless told otherwise. Expired items are swept at the start of every batch, by one script on
the server's clock. There is no vector index: a search with a `query` is refused, and values
must be JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis
import redis.asyncio
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)

from shared import keys
from shared.compat.langgraph import compare_values, does_match
from shared.redis_exchange import LUA_NOW_MS, AsyncClients, Command, Exchange, aexecute, evalsha, execute
from shared.settings import Settings

_I = TypeVar("_I", bound=Item)

_FIELDS = ("v", "c", "u", "t")
"""What `HMGET` reads of an item, in this order."""

_FETCH_AT_LEAST = 64
"""Items a filtered search reads per round trip, at least."""

# Every script takes the key prefix `p:` as ARGV[1] and derives the keys from it and from the
# ids it is given: taskforce needs one Redis, not a cluster (as `shared.ledger`).
_DROP = """
local function drop(p, id, ns, key)
  local existed = redis.call('DEL', p .. 'i:' .. id)
  redis.call('ZREM', p .. 'exp', id)
  if ns then
    local keys = p .. 'k:' .. ns
    redis.call('ZREM', keys, key)
    if redis.call('EXISTS', keys) == 0 then redis.call('ZREM', p .. 'ns', ns) end
  end
  return existed
end
"""

# ARGV: p, then the id, namespace and key of the item to delete.
_DELETE = _DROP + "return drop(ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n"

# ARGV: p. Deletes every item whose TTL has run out.
_SWEEP = (
    LUA_NOW_MS
    + _DROP
    + """
local p = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now)
for _, id in ipairs(due) do
  local where = redis.call('HMGET', p .. 'i:' .. id, 'n', 'k')
  drop(p, id, where[1], where[2])
end
return #due
"""
)

# ARGV: p. How many items' TTL has run out, not yet swept.
_DUE = LUA_NOW_MS + "return redis.call('ZCOUNT', ARGV[1] .. 'exp', '-inf', now)\n"

# ARGV: p, id, namespace, key, value (JSON), TTL in ms ('' for none).
_PUT = (
    LUA_NOW_MS
    + """
local p, id, ns, key, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6]
local item = p .. 'i:' .. id
local created = redis.call('HGET', item, 'c') or now
redis.call('HSET', item, 'v', ARGV[5], 'c', created, 'u', now, 'n', ns, 'k', key)
redis.call('ZADD', p .. 'k:' .. ns, now, key)
redis.call('ZADD', p .. 'ns', 0, ns)
if ttl ~= '' then
  redis.call('HSET', item, 't', ttl)
  redis.call('ZADD', p .. 'exp', now + tonumber(ttl), id)
else
  redis.call('HDEL', item, 't')
  redis.call('ZREM', p .. 'exp', id)
end
return now
"""
)

# ARGV: p, then pairs of an id and its TTL in ms. Restarts the TTL of items that still have one.
_TOUCH = (
    LUA_NOW_MS
    + """
for i = 2, #ARGV, 2 do
  redis.call('ZADD', ARGV[1] .. 'exp', 'XX', now + tonumber(ARGV[i + 1]), ARGV[i])
end
return 0
"""
)

_SCRIPTS = (_DELETE, _SWEEP, _DUE, _PUT, _TOUCH)


class StoreQueryError(ValueError):
    """A search asked for vector search, which this store has no index for."""


def store_prefix(settings: Settings) -> str:
    """Where the store of a deployment keeps its keys."""
    return keys.store(settings.queue_prefix)


def _text(namespace: tuple[str, ...]) -> str:
    return ".".join(namespace)


def _id(namespace: str, key: str) -> str:
    return json.dumps([namespace, key], ensure_ascii=False, separators=(",", ":"))


def _time(ms: bytes) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _scored(reply: list[Any]) -> list[tuple[bytes, Any]]:
    """`ZRANGE ... WITHSCORES` read raw: pairs in RESP3, a flat list in RESP2."""
    if reply and isinstance(reply[0], list):
        return [(member, score) for member, score in reply]
    return list(zip(reply[::2], reply[1::2], strict=True))


def _matches(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    return all(compare_values(value.get(field), expected) for field, expected in (filter or {}).items())


def _json(op: PutOp) -> str:
    try:
        return json.dumps(op.value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"store value at {op.namespace} {op.key!r} is not JSON ({error}): this store keeps values "
            "as JSON, for every process to read"
        ) from None


@dataclass(frozen=True)
class StoreCensus:
    """How many items a store holds, how many of them have a TTL, and how many of those are due."""

    items: int
    expiring: int
    due: int


class SharedStore(BaseStore):
    """A LangGraph `BaseStore` on Redis that the main agent and every worker open alike."""

    supports_ttl = True

    def __init__(
        self,
        client: redis.Redis,
        async_client: Callable[[], redis.asyncio.Redis] | AsyncClients,
        prefix: str,
        *,
        url: str | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        """`async_client` makes a `redis.asyncio.Redis` for the running event loop (called once
        per loop). `url` says which Redis this is, for `opened_by`; `ttl` is langgraph's
        `TTLConfig` (a default TTL, whether reads refresh it)."""
        self.client = client
        self._aclients = (
            async_client if isinstance(async_client, AsyncClients) else AsyncClients(async_client)
        )
        self.prefix = prefix
        self.url = url
        self.ttl_config = ttl
        self._p = f"{prefix}:"

    @classmethod
    def from_url(cls, url: str, prefix: str, *, ttl: TTLConfig | None = None) -> SharedStore:
        return cls(
            redis.Redis.from_url(url),
            lambda: redis.asyncio.Redis.from_url(url),
            prefix,
            url=url,
            ttl=ttl,
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, ttl: TTLConfig | None = None) -> SharedStore:
        """The store of the deployment `settings` describe: the one its workers open."""
        if settings.redis_url is None:
            raise ValueError("the shared store needs TASKFORCE_REDIS_URL")
        return cls.from_url(settings.redis_url, store_prefix(settings), ttl=ttl)

    def opened_by(self, settings: Settings) -> bool:
        """Whether workers with `settings` open this very store."""
        return self.url is not None and (self.url, self.prefix) == (
            settings.redis_url,
            store_prefix(settings),
        )

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return execute(self.client, self._batch(list(ops)), _SCRIPTS)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await aexecute(self._aclients.current(), self._batch(list(ops)), _SCRIPTS)

    def census(self) -> StoreCensus:
        """What the store holds, for `taskforce prune`: no item is ever read to count it."""
        return execute(self.client, self._census(), _SCRIPTS)

    def sweep(self) -> int:
        """Delete the items whose TTL has run out, now rather than at the next batch; how many."""
        return execute(self.client, self._sweep(), _SCRIPTS)

    # The steps, shared by both clients: each yield is one round trip.

    def _census(self) -> Exchange[StoreCensus]:
        namespaces = yield from self._under(())
        *sizes, expiring, due = yield [
            *(("ZCARD", f"{self._p}k:{namespace}") for namespace in namespaces),
            ("ZCARD", f"{self._p}exp"),
            evalsha(_DUE, [], self._p),
        ]
        return StoreCensus(items=sum(sizes), expiring=expiring, due=due)

    def _sweep(self) -> Exchange[int]:
        (swept,) = yield [evalsha(_SWEEP, [], self._p)]
        return int(swept)

    def _batch(self, ops: Sequence[Op]) -> Exchange[list[Result]]:
        for op in ops:
            validate_op_namespace(op)
            if isinstance(op, SearchOp) and op.query:
                raise StoreQueryError(
                    "SharedStore has no vector index: search it by namespace and filter, without a query"
                )
            if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
                raise ValueError(f"unknown store operation: {type(op).__name__}")
        writes = self._writes([op for op in ops if isinstance(op, PutOp)])
        sweep = evalsha(_SWEEP, [], self._p)
        results: list[Result] = [None] * len(ops)
        if all(isinstance(op, PutOp) for op in ops):
            yield [sweep, *writes]
            return results
        gets = [(index, op) for index, op in enumerate(ops) if isinstance(op, GetOp)]
        replies = yield [sweep, *(self._read(_text(op.namespace), op.key) for _, op in gets)]
        touch: list[str] = []
        for (index, op), reply in zip(gets, replies[1:], strict=True):
            item = results[index] = self._item(Item, op.namespace, op.key, reply)
            if item is not None and op.refresh_ttl:
                self._touch(item, reply, touch)
        for index, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[index] = yield from self._search(op, touch)
            elif isinstance(op, ListNamespacesOp):
                results[index] = yield from self._list_namespaces(op)
        if touch:
            writes.insert(0, evalsha(_TOUCH, [], self._p, *touch))
        if writes:
            yield writes
        return results

    def _writes(self, puts: Sequence[PutOp]) -> list[Command]:
        """Each item's last put, as a script call; every value is encoded before any is sent."""
        latest = {(op.namespace, op.key): op for op in puts}
        commands: list[Command] = []
        for op in latest.values():
            namespace = _text(op.namespace)
            where = (self._p, _id(namespace, op.key), namespace, op.key)
            if op.value is None:
                commands.append(evalsha(_DELETE, [], *where))
            else:
                ttl = "" if op.ttl is None else str(max(1, round(op.ttl * 60_000)))
                commands.append(evalsha(_PUT, [], *where, _json(op), ttl))
        return commands

    def _read(self, namespace: str, key: str) -> Command:
        return ("HMGET", f"{self._p}i:{_id(namespace, key)}", *_FIELDS)

    @staticmethod
    def _item(kind: type[_I], namespace: tuple[str, ...], key: str, reply: list[bytes | None]) -> _I | None:
        """The item an `HMGET` of `_FIELDS` read, if it exists."""
        value, created, updated, _ = reply
        if value is None or created is None or updated is None:
            return None  # never written, deleted, or deleted since it was listed
        return kind(
            namespace=namespace,
            key=key,
            value=json.loads(value),
            created_at=_time(created),
            updated_at=_time(updated),
        )

    @staticmethod
    def _touch(item: Item, reply: list[bytes | None], touch: list[str]) -> None:
        """Note the item's TTL, if it has one, to be restarted (a read that refreshes TTLs)."""
        ttl = reply[-1]
        if ttl is not None:
            touch += [_id(_text(item.namespace), item.key), ttl.decode()]

    def _under(self, prefix: tuple[str, ...]) -> Exchange[list[str]]:
        """The namespaces holding items at `prefix` or below it."""
        key = f"{self._p}ns"
        if not prefix:
            (everything,) = yield [("ZRANGEBYLEX", key, "-", "+")]
            return [member.decode() for member in everything]
        text = _text(prefix)
        exact, below = yield [("ZSCORE", key, text), ("ZRANGEBYLEX", key, f"[{text}.", f"({text}/")]
        return ([text] if exact is not None else []) + [member.decode() for member in below]

    def _search(self, op: SearchOp, touch: list[str]) -> Exchange[list[SearchItem]]:
        namespaces = yield from self._under(op.namespace_prefix)
        if not namespaces:
            return []
        listings = yield [
            ("ZRANGE", f"{self._p}k:{namespace}", 0, -1, "WITHSCORES") for namespace in namespaces
        ]
        candidates = sorted(
            (-float(score), namespace, key.decode())
            for namespace, listing in zip(namespaces, listings, strict=True)
            for key, score in _scored(listing)
        )
        if not op.filter:
            candidates = candidates[op.offset : op.offset + op.limit]
        # As InMemoryStore: stop reading once offset + limit items matched, unless a negative
        # bound makes the slice count from the end.
        wanted = op.offset + op.limit if min(op.offset, op.limit) >= 0 else None
        found: list[tuple[SearchItem, list[bytes | None]]] = []
        step = max(_FETCH_AT_LEAST, op.offset + op.limit)
        for start in range(0, len(candidates), step):
            chunk = [
                (tuple(namespace.split(".")), key) for _, namespace, key in candidates[start : start + step]
            ]
            replies = yield [self._read(_text(namespace), key) for namespace, key in chunk]
            for (namespace, key), reply in zip(chunk, replies, strict=True):
                item = self._item(SearchItem, namespace, key, reply)
                if item is not None and _matches(item.value, op.filter):
                    found.append((item, reply))
            if op.filter and wanted is not None and len(found) >= wanted:
                break
        kept = found[op.offset : op.offset + op.limit] if op.filter else found
        if op.refresh_ttl:
            for item, reply in kept:
                self._touch(item, reply, touch)
        return [item for item, _ in kept]

    def _list_namespaces(self, op: ListNamespacesOp) -> Exchange[list[tuple[str, ...]]]:
        conditions = op.match_conditions or ()
        # A prefix condition's labels up to its first wildcard narrow the namespaces read.
        literal: list[str] = []
        prefix = next((c.path for c in conditions if c.match_type == "prefix"), ())
        for label in prefix:
            if label == "*":
                break
            literal.append(label)
        texts = yield from self._under(tuple(literal))
        namespaces = [tuple(text.split(".")) for text in texts]
        matching = [ns for ns in namespaces if all(does_match(c, ns) for c in conditions)]
        if op.max_depth is not None:
            matching = list({ns[: op.max_depth] for ns in matching})
        return sorted(matching)[op.offset : op.offset + op.limit]


def open_deployment_store(settings: Settings) -> BaseStore:
    """The store every worker gives subagents as `runtime.store`: langgraph's `PostgresStore`
    on `TASKFORCE_STORE_URL` when set, else the `SharedStore` on the broker's Redis."""
    if settings.store_url is not None:
        from shared.postgres import open_postgres_store

        return open_postgres_store(settings.store_url.get_secret_value())
    return SharedStore.from_settings(settings)
