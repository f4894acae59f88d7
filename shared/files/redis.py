"""Files in Redis: a key per file and a set per directory, so nothing ever scans the keyspace.

Layout, for namespace `ns` and scope `s` (the root scope is empty):

- `ns:c:s:/a/b.txt`: the content, a plain string (its size is `STRLEN`; binary or text is read
  off the bytes);
- `ns:f:s:/a/b.txt`: its metadata, a hash of `ct` and `mt` (created and modified, ISO 8601) and
  `v` (version, from one counter `ns:version`);
- `ns:d:s:/a`: a set of the entries directly in `/a`, files as `b.txt`, directories as `sub/`.

`ls` reads one set, `glob` and `grep` walk sets level by level, and reading a file is an
`HMGET` and a `GET` in one round trip. An edit is one Lua script that first checks the version it read,
so a concurrent writer makes it retry instead of being overwritten. A plain write sends a small
Lua script that bumps the version and indexes the directories, then a `SET` of the content in
the same round trip, so the content never passes through the Lua interpreter (which copies it
twice). The two are not one transaction, and need not be: the version moves first, so an edit
that read the old content fails its check, and an edit that slips in between is overwritten by
the content that follows, as if it came first. A removal is a script that also drops
directories left empty; a write racing a removal of the same file may leave its content behind,
unindexed and unread. Workspace scopes carry a TTL that every write below a directory renews.

Commands go out as one packed buffer per batch on a connection from the client's pool, rather
than through redis-py's pipeline objects: for files of 100 KB the pipeline machinery alone cost
more than a third of a plain `SET` (see `bench/backends.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

from shared.files.paths import ancestors, children
from shared.files.scopes import join_scope
from shared.files.store import ANY, Entry, Expect, Listing, Store, Stored, is_binary, now_iso

T = TypeVar("T")
_Command = tuple[Any, ...]
_Exchange = Generator[list[_Command], list[Any], T]

DEFAULT_NAMESPACE = "taskforce:fs"

# Index one saved file. KEYS[k]: its metadata hash, KEYS[k + 1]: the version counter,
# KEYS[k + 2 ...]: its directories from the root down. ARGV[a ...]: now, created_at hint, ttl
# seconds (0: none), then one entry per directory.
_INDEX = """
local function index(k, a)
  local version = redis.call('INCR', KEYS[k + 1])
  redis.call('HSETNX', KEYS[k], 'ct', ARGV[a + 1] ~= '' and ARGV[a + 1] or ARGV[a])
  redis.call('HSET', KEYS[k], 'mt', ARGV[a], 'v', version)
  local ttl = tonumber(ARGV[a + 2])
  if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
  for i = k + 2, #KEYS do
    redis.call('SADD', KEYS[i], ARGV[a + 3 + i - k - 2])
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
  end
  return version
end
"""

# Before a plain SET of the content: KEYS and ARGV as for `index(1, 1)`.
_SAVING = _INDEX + "return index(1, 1)\n"

# KEYS: content, then as `index(2, 3)`. ARGV: expected version ('' for "must not exist"), the
# content, then as `index(2, 3)`.
_CONDITIONAL_SAVE = (
    _INDEX
    + """
local current = redis.call('HGET', KEYS[2], 'v')
if (ARGV[1] == '' and current) or (ARGV[1] ~= '' and current ~= ARGV[1]) then return false end
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl) else redis.call('SET', KEYS[1], ARGV[2]) end
return index(2, 3)
"""
)

# KEYS: content, metadata, then the directories from the root down. ARGV: one entry per
# directory. Drops the file's entry, and each directory's entry in its parent once it is empty.
_REMOVE = """
local existed = redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[1])
for i = #KEYS, 3, -1 do
  redis.call('SREM', KEYS[i], ARGV[i - 2])
  if redis.call('EXISTS', KEYS[i]) == 1 then break end
end
return existed
"""

# Redis names scripts by their SHA-1.
_SCRIPTS = {hashlib.sha1(source.encode()).hexdigest(): source for source in (_CONDITIONAL_SAVE, _REMOVE)}
_SHA = {source: sha for sha, source in _SCRIPTS.items()}


def _evalsha(source: str, keys: Sequence[Any], *args: Any) -> _Command:
    return ("EVALSHA", _SHA[source], len(keys), *keys, *args)


JOIN_BELOW = 64 * 1024
"""redis-py packs a large value as a chunk of its own, sent by a system call of its own; up to
this size one copy into a single buffer is cheaper than the extra calls."""


def _buffers(chunks: list[bytes]) -> list[bytes]:
    return [b"".join(chunks)] if sum(map(len, chunks)) < JOIN_BELOW else chunks


class _AsyncClients:
    """One asyncio client per event loop: an asyncio connection belongs to the loop that opened
    it, and workers run each delegation on a loop of its own. A client keeps its loop alive, so
    whoever ends a loop calls `aclose_loop_clients` first (the worker does, per delegation)."""

    def __init__(self, factory: Callable[[], redis.asyncio.Redis]) -> None:
        self._factory = factory
        self._by_loop: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._lock = threading.Lock()
        _all_clients.add(self)

    def current(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._by_loop.get(loop)
            if client is None:
                client = self._by_loop[loop] = self._factory()
        return client

    def release(self, loop: asyncio.AbstractEventLoop) -> redis.asyncio.Redis | None:
        with self._lock:
            return self._by_loop.pop(loop, None)


_all_clients: weakref.WeakSet[_AsyncClients] = weakref.WeakSet()


async def aclose_loop_clients() -> None:
    """Close every asyncio Redis client opened on the running loop, before the loop ends."""
    loop = asyncio.get_running_loop()
    for clients in list(_all_clients):
        client = clients.release(loop)
        if client is not None:
            await client.aclose()


class RedisStore(Store):
    """A `Store` in one Redis database, shared by every process that connects to it."""

    def __init__(
        self,
        client: redis.Redis,
        async_client: Callable[[], redis.asyncio.Redis] | _AsyncClients,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        scope: str = "",
        ttl_s: int | None = None,
    ) -> None:
        """`async_client` makes a client for the running event loop; it is called once per loop."""
        self.client = client
        self._aclients = (
            async_client if isinstance(async_client, _AsyncClients) else _AsyncClients(async_client)
        )
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._scope = scope

    @classmethod
    def from_url(cls, url: str, namespace: str = DEFAULT_NAMESPACE) -> RedisStore:
        """Both clients for one `redis://`, `rediss://` or `unix://` URL."""
        return cls(redis.Redis.from_url(url), lambda: redis.asyncio.Redis.from_url(url), namespace)

    def scope(self, name: str, *, ttl_s: int | None = None) -> RedisStore:
        return RedisStore(
            self.client, self._aclients, self.namespace, scope=join_scope(self._scope, name), ttl_s=ttl_s
        )

    def _key(self, kind: str, path: str) -> str:
        """`c` content, `f` metadata or `d` directory key of a path in this scope."""
        return f"{self.namespace}:{kind}:{self._scope}:{path}"

    # Each operation is a generator of command batches, so the blocking and the asyncio client
    # run the very same steps; a batch is one round trip.

    def _load(self, paths: Sequence[str]) -> _Exchange[list[Stored | None]]:
        commands: list[_Command] = []
        for path in paths:
            commands += [("HMGET", self._key("f", path), "ct", "mt", "v"), ("GET", self._key("c", path))]
        # No MULTI needed: writes move the version before the content, so a version read before
        # the content can only be older than it, and an edit based on the pair fails its check.
        replies = yield commands
        return [_stored(replies[i], replies[i + 1]) for i in range(0, len(replies), 2)]

    def _save(
        self, path: str, content: bytes, expect: Expect, created_at: str | None
    ) -> _Exchange[str | None]:
        pairs = ancestors(path)
        ttl = self.ttl_s or 0
        index_keys = [
            self._key("f", path),
            f"{self.namespace}:version",
            *(self._key("d", d) for d, _ in pairs),
        ]
        index_args = [now_iso(), created_at or "", ttl]
        entries = [entry for _, entry in pairs]
        if expect is ANY:
            content_key = self._key("c", path)
            stored = ("SET", content_key, content, "EX", ttl) if ttl else ("SET", content_key, content)
            # EVAL, not EVALSHA: were the script missing, the SET would still run, unindexed.
            replies = yield [("EVAL", _SAVING, len(index_keys), *index_keys, *index_args, *entries), stored]
            return str(replies[0])
        keys = [self._key("c", path), *index_keys]
        (version,) = yield [_evalsha(_CONDITIONAL_SAVE, keys, expect, content, *index_args, *entries)]
        return None if version is None else str(version)

    def _listing(self, directory: str) -> _Exchange[Listing]:
        (members,) = yield [("SMEMBERS", self._key("d", directory))]
        files, subdirectories = children(directory, (member.decode() for member in members))
        replies = yield [*self._stat(files), *(("EXISTS", self._key("d", sub)) for sub in subdirectories)]
        # Entries whose file or directory expired (workspace TTL) are left out.
        live = [sub for sub, exists in zip(subdirectories, replies[2 * len(files) :], strict=True) if exists]
        return Listing(files=_entries(files, replies), directories=live)

    def _walk(self, directory: str) -> _Exchange[list[Entry]]:
        files: list[str] = []
        level = [directory]
        while level:
            replies = yield [("SMEMBERS", self._key("d", d)) for d in level]
            below: list[str] = []
            for d, members in zip(level, replies, strict=True):
                found, subdirectories = children(d, (member.decode() for member in members))
                files += found
                below += subdirectories
            level = below
        replies = yield self._stat(files)
        return _entries(files, replies)

    def _stat(self, paths: Sequence[str]) -> list[_Command]:
        """Two commands per path, read back by `_entries`."""
        commands: list[_Command] = []
        for path in paths:
            commands += [("HGET", self._key("f", path), "mt"), ("STRLEN", self._key("c", path))]
        return commands

    def _remove(self, paths: Sequence[str]) -> _Exchange[int]:
        commands: list[_Command] = []
        for path in paths:
            pairs = ancestors(path)
            keys = [self._key("c", path), self._key("f", path), *(self._key("d", d) for d, _ in pairs)]
            commands.append(_evalsha(_REMOVE, keys, *(entry for _, entry in pairs)))
        replies = yield commands
        return sum(int(existed) for existed in replies)

    def _send(self, commands: list[_Command]) -> list[Any]:
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(_buffers(connection.pack_commands(commands)))  # type: ignore[no-untyped-call]
            replies = [connection.read_response() for _ in commands]
        except BaseException:
            # Replies may be left unread: the connection must not go back to the pool as it is.
            connection.disconnect()  # type: ignore[no-untyped-call]
            raise
        finally:
            pool.release(connection)
        return replies

    async def _asend(self, commands: list[_Command]) -> list[Any]:
        pool = self._aclients.current().connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.send_packed_command(_buffers(connection.pack_commands(commands)))
            replies = [await connection.read_response() for _ in commands]
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return replies

    def _execute(self, exchange: _Exchange[T]) -> T:
        try:
            batch = next(exchange)
            while True:
                try:
                    replies = self._send(batch) if batch else []
                except NoScriptError:  # a restarted Redis forgot the scripts: load them, go again
                    self._send([("SCRIPT", "LOAD", source) for source in _SCRIPTS.values()])
                    replies = self._send(batch)
                batch = exchange.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _aexecute(self, exchange: _Exchange[T]) -> T:
        try:
            batch = next(exchange)
            while True:
                try:
                    replies = await self._asend(batch) if batch else []
                except NoScriptError:
                    await self._asend([("SCRIPT", "LOAD", source) for source in _SCRIPTS.values()])
                    replies = await self._asend(batch)
                batch = exchange.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        return self._execute(self._load(paths))

    async def aload(self, paths: Sequence[str]) -> list[Stored | None]:
        return await self._aexecute(self._load(paths))

    def save(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        return self._execute(self._save(path, content, expect, created_at))

    async def asave(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        return await self._aexecute(self._save(path, content, expect, created_at))

    def listing(self, directory: str) -> Listing:
        return self._execute(self._listing(directory))

    async def alisting(self, directory: str) -> Listing:
        return await self._aexecute(self._listing(directory))

    def walk(self, directory: str) -> list[Entry]:
        return self._execute(self._walk(directory))

    async def awalk(self, directory: str) -> list[Entry]:
        return await self._aexecute(self._walk(directory))

    def remove(self, paths: Sequence[str]) -> int:
        return self._execute(self._remove(paths))

    async def aremove(self, paths: Sequence[str]) -> int:
        return await self._aexecute(self._remove(paths))


def _stored(metadata: list[bytes | None], content: bytes | None) -> Stored | None:
    created, modified, version = metadata
    if content is None or version is None:
        return None
    return Stored(
        content=content,
        binary=is_binary(content),
        created_at=(created or b"").decode(),
        modified_at=(modified or b"").decode(),
        version=version.decode(),
    )


def _entries(paths: Sequence[str], replies: Sequence[Any]) -> list[Entry]:
    """Entries from the replies of `_stat`, leaving out files whose metadata expired."""
    return [
        Entry(path=path, size=int(replies[2 * i + 1]), modified_at=replies[2 * i].decode())
        for i, path in enumerate(paths)
        if replies[2 * i] is not None
    ]
