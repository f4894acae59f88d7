"""Files in Redis: a hash per file and a set per directory, so nothing ever scans the keyspace.

Layout, for namespace `ns` and scope `s` (the root scope is empty):

- `ns:f:s:/a/b.txt`: a hash with the content (`c`), `b` (1 when binary), `n` (size), `ct` and `mt`
  (created and modified, ISO 8601) and `v` (version, from one counter `ns:version`);
- `ns:d:s:/a`: a set of the entries directly in `/a`, files as `b.txt`, directories as `sub/`.

`ls` reads one set, `glob` and `grep` walk sets level by level, and a file costs one `HMGET`.
Every write keeps the file and its directory entries consistent in one atomic step: a Lua script
for conditional saves (an edit checks the version it read and fails if another worker wrote in
between) and for removals (which drop directories that become empty). A plain overwrite sends
its content with `HSET` inside `MULTI`, so large files never pass through the Lua interpreter.
Workspace scopes carry a TTL that every write below a directory renews.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio

from shared.files.paths import ancestors
from shared.files.scopes import join_scope
from shared.files.store import ANY, Entry, Expect, Listing, Store, Stored, now_iso

T = TypeVar("T")
_Commands = list[tuple[Any, ...]]
_Exchange = Generator[tuple[bool, _Commands], list[Any], T]

DEFAULT_NAMESPACE = "taskforce:fs"

# KEYS: file, version counter, then the directories from the root down.
# ARGV: now, created_at hint, ttl seconds (0: none), then one entry per directory.
_INDEX = """
local version = redis.call('INCR', KEYS[2])
redis.call('HSETNX', KEYS[1], 'ct', ARGV[2] ~= '' and ARGV[2] or ARGV[1])
redis.call('HSET', KEYS[1], 'v', version)
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[i + 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return version
"""

# As _INDEX, after checking the stored version. Three more ARGV at the end: the expected
# version ('' for "must not exist"), the content and the binary flag.
_CONDITIONAL_SAVE = (
    """
local expect = ARGV[#ARGV - 2]
local current = redis.call('HGET', KEYS[1], 'v')
if (expect == '' and current) or (expect ~= '' and current ~= expect) then return false end
local content = ARGV[#ARGV - 1]
redis.call('HSET', KEYS[1], 'c', content, 'b', ARGV[#ARGV], 'n', string.len(content), 'mt', ARGV[1])
"""
    + _INDEX
)

# KEYS: file, then the directories from the root down. ARGV: one entry per directory.
# Drops the file's entry, and each directory's entry in its parent once it is empty.
_REMOVE = """
local existed = redis.call('DEL', KEYS[1])
for i = #KEYS, 2, -1 do
  redis.call('SREM', KEYS[i], ARGV[i - 1])
  if redis.call('EXISTS', KEYS[i]) == 1 then break end
end
return existed
"""


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

    def _file_key(self, path: str) -> str:
        return f"{self.namespace}:f:{self._scope}:{path}"

    def _dir_key(self, directory: str) -> str:
        return f"{self.namespace}:d:{self._scope}:{directory}"

    # Each operation is a generator of command batches, so the blocking and the asyncio client
    # run the very same steps. A batch is (transactional?, commands).

    def _load(self, paths: Sequence[str]) -> _Exchange[list[Stored | None]]:
        replies = yield False, [("hmget", self._file_key(path), "c", "b", "ct", "mt", "v") for path in paths]
        return [_stored(reply) for reply in replies]

    def _save(
        self, path: str, content: bytes, binary: bool, expect: Expect, created_at: str | None
    ) -> _Exchange[str | None]:
        pairs = ancestors(path)
        keys = [self._file_key(path), f"{self.namespace}:version", *(self._dir_key(d) for d, _ in pairs)]
        args: list[Any] = [now_iso(), created_at or "", self.ttl_s or 0, *(entry for _, entry in pairs)]
        flag = b"1" if binary else b"0"
        if expect is ANY:
            fields = {"c": content, "b": flag, "n": len(content), "mt": args[0]}
            replies = yield (
                True,
                [("hset", keys[0], None, None, fields), ("eval", _INDEX, len(keys), *keys, *args)],
            )
            return str(replies[-1])
        (version,) = yield (
            False,
            [("eval", _CONDITIONAL_SAVE, len(keys), *keys, *args, expect, content, flag)],
        )
        return None if version is None else str(version)

    def _listing(self, directory: str) -> _Exchange[Listing]:
        (members,) = yield False, [("smembers", self._dir_key(directory))]
        names = sorted(member.decode() for member in members)
        files = [_join(directory, name) for name in names if not name.endswith("/")]
        subdirectories = [_join(directory, name[:-1]) for name in names if name.endswith("/")]
        replies = yield (
            False,
            [
                *(("hmget", self._file_key(path), "n", "mt") for path in files),
                *(("exists", self._dir_key(sub)) for sub in subdirectories),
            ],
        )
        # Entries whose file or directory expired (workspace TTL) are left out.
        entries = [_entry(path, reply) for path, reply in zip(files, replies, strict=False)]
        live = [sub for sub, exists in zip(subdirectories, replies[len(files) :], strict=True) if exists]
        return Listing(files=[entry for entry in entries if entry is not None], directories=live)

    def _walk(self, directory: str) -> _Exchange[list[Entry]]:
        files: list[str] = []
        level = [directory]
        while level:
            replies = yield False, [("smembers", self._dir_key(d)) for d in level]
            below: list[str] = []
            for d, members in zip(level, replies, strict=True):
                for name in sorted(member.decode() for member in members):
                    (below if name.endswith("/") else files).append(_join(d, name.rstrip("/")))
            level = below
        replies = yield False, [("hmget", self._file_key(path), "n", "mt") for path in files]
        entries = [_entry(path, reply) for path, reply in zip(files, replies, strict=True)]
        return [entry for entry in entries if entry is not None]

    def _remove(self, paths: Sequence[str]) -> _Exchange[int]:
        commands: _Commands = []
        for path in paths:
            pairs = ancestors(path)
            keys = [self._file_key(path), *(self._dir_key(d) for d, _ in pairs)]
            commands.append(("eval", _REMOVE, len(keys), *keys, *(entry for _, entry in pairs)))
        replies = yield False, commands
        return sum(int(existed) for existed in replies)

    def _execute(self, exchange: _Exchange[T]) -> T:
        try:
            transaction, commands = next(exchange)
            while True:
                with self.client.pipeline(transaction=transaction) as pipe:
                    for name, *args in commands:
                        getattr(pipe, name)(*args)
                    replies = pipe.execute() if commands else []
                transaction, commands = exchange.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _aexecute(self, exchange: _Exchange[T]) -> T:
        try:
            transaction, commands = next(exchange)
            while True:
                async with self._aclients.current().pipeline(transaction=transaction) as pipe:
                    for name, *args in commands:
                        getattr(pipe, name)(*args)
                    replies = await pipe.execute() if commands else []
                transaction, commands = exchange.send(replies)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        return self._execute(self._load(paths))

    async def aload(self, paths: Sequence[str]) -> list[Stored | None]:
        return await self._aexecute(self._load(paths))

    def save(
        self, path: str, content: bytes, *, binary: bool, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        return self._execute(self._save(path, content, binary, expect, created_at))

    async def asave(
        self, path: str, content: bytes, *, binary: bool, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        return await self._aexecute(self._save(path, content, binary, expect, created_at))

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


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def _stored(reply: list[bytes | None]) -> Stored | None:
    content, binary, created, modified, version = reply
    if content is None or version is None:
        return None
    return Stored(
        content=content,
        binary=binary == b"1",
        created_at=(created or b"").decode(),
        modified_at=(modified or b"").decode(),
        version=version.decode(),
    )


def _entry(path: str, reply: list[bytes | None]) -> Entry | None:
    size, modified = reply
    if size is None:
        return None
    return Entry(path=path, size=int(size), modified_at=(modified or b"").decode())
