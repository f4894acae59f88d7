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

Each operation is an exchange of command batches (`shared.redis_exchange`): one round trip per
batch, the same steps for the blocking and the asyncio client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio

from shared.files.paths import ancestors, children
from shared.files.scopes import join_scope
from shared.files.store import ANY, Entry, Expect, Listing, Store, Stored, is_binary, now_iso
from shared.redis_exchange import (
    AsyncClients,
    Command,
    Exchange,
    aexecute,
    evalsha,
    execute,
)

T = TypeVar("T")

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

_SCRIPTS = (_CONDITIONAL_SAVE, _REMOVE)


class RedisStore(Store):
    """A `Store` in one Redis database, shared by every process that connects to it."""

    def __init__(
        self,
        client: redis.Redis,
        async_client: Callable[[], redis.asyncio.Redis] | AsyncClients,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        scope: str = "",
        ttl_s: int | None = None,
    ) -> None:
        """`async_client` makes a client for the running event loop; it is called once per loop."""
        self.client = client
        self._aclients = (
            async_client if isinstance(async_client, AsyncClients) else AsyncClients(async_client)
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

    # Each operation is an exchange: the blocking and the asyncio client run the very same steps.

    def _load(self, paths: Sequence[str]) -> Exchange[list[Stored | None]]:
        commands: list[Command] = []
        for path in paths:
            commands += [("HMGET", self._key("f", path), "ct", "mt", "v"), ("GET", self._key("c", path))]
        # No MULTI needed: writes move the version before the content, so a version read before
        # the content can only be older than it, and an edit based on the pair fails its check.
        replies = yield commands
        return [_stored(replies[i], replies[i + 1]) for i in range(0, len(replies), 2)]

    def _save(
        self, path: str, content: bytes, expect: Expect, created_at: str | None
    ) -> Exchange[str | None]:
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
        (version,) = yield [evalsha(_CONDITIONAL_SAVE, keys, expect, content, *index_args, *entries)]
        return None if version is None else str(version)

    def _listing(self, directory: str) -> Exchange[Listing]:
        (members,) = yield [("SMEMBERS", self._key("d", directory))]
        files, subdirectories = children(directory, (member.decode() for member in members))
        replies = yield [*self._stat(files), *(("EXISTS", self._key("d", sub)) for sub in subdirectories)]
        # Entries whose file or directory expired (workspace TTL) are left out.
        live = [sub for sub, exists in zip(subdirectories, replies[2 * len(files) :], strict=True) if exists]
        return Listing(files=_entries(files, replies), directories=live)

    def _walk(self, directory: str) -> Exchange[list[Entry]]:
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

    def _stat(self, paths: Sequence[str]) -> list[Command]:
        """Two commands per path, read back by `_entries`."""
        commands: list[Command] = []
        for path in paths:
            commands += [("HGET", self._key("f", path), "mt"), ("STRLEN", self._key("c", path))]
        return commands

    def _remove(self, paths: Sequence[str]) -> Exchange[int]:
        commands: list[Command] = []
        for path in paths:
            pairs = ancestors(path)
            keys = [self._key("c", path), self._key("f", path), *(self._key("d", d) for d, _ in pairs)]
            commands.append(evalsha(_REMOVE, keys, *(entry for _, entry in pairs)))
        replies = yield commands
        return sum(int(existed) for existed in replies)

    def _execute(self, exchange: Exchange[T]) -> T:
        return execute(self.client, exchange, _SCRIPTS)

    async def _aexecute(self, exchange: Exchange[T]) -> T:
        return await aexecute(self._aclients.current(), exchange, _SCRIPTS)

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
