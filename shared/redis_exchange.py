"""Batches of Redis commands, run the same way by the blocking and the asyncio client.

An operation on a Redis-backed store is written once, as a generator (an `Exchange`): it
yields a batch of commands, receives their replies, and either yields the next batch or returns
its result. `execute` drives it on a blocking client, `aexecute` on an asyncio one, so the two
APIs of a store cannot drift apart. A batch is one round trip: one packed buffer on a
connection from the client's pool, rather than redis-py's pipeline objects, whose machinery
alone cost more than a third of a plain `SET` of 100 KB (see `bench/backends.py`).

Replies are read raw, without redis-py's per-command callbacks: `HMGET` gives a list,
`ZRANGE ... WITHSCORES` a flat list of members and scores, values are bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.exceptions import NoScriptError

T = TypeVar("T")
_Closer = AsyncGenerator[None, None]
Command = tuple[Any, ...]
Exchange = Generator[list[Command], list[Any], T]

LUA_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
"""Prepended to a script that needs the time: the Redis server's clock in ms, as `now`, so
machines with skewed clocks agree on it."""


@functools.cache
def script_sha(source: str) -> str:
    """The name Redis knows a script by."""
    return hashlib.sha1(source.encode()).hexdigest()


def evalsha(source: str, keys: Sequence[Any], *args: Any) -> Command:
    """Run a script by its SHA-1; `execute` loads the scripts it is given if Redis lacks one."""
    return ("EVALSHA", script_sha(source), len(keys), *keys, *args)


JOIN_BELOW = 64 * 1024
"""redis-py packs a large value as a chunk of its own, sent by a system call of its own; up to
this size one copy into a single buffer is cheaper than the extra calls."""


def _buffers(chunks: list[bytes]) -> list[bytes]:
    return [b"".join(chunks)] if sum(map(len, chunks)) < JOIN_BELOW else chunks


def send(client: redis.Redis, commands: list[Command]) -> list[Any]:
    """One round trip: every command sent in one buffer, then every reply read."""
    pool = client.connection_pool
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


async def asend(client: redis.asyncio.Redis, commands: list[Command]) -> list[Any]:
    pool = client.connection_pool
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


def execute(client: redis.Redis, exchange: Exchange[T], scripts: Iterable[str]) -> T:
    """Run `exchange` to its result. A batch that fails because Redis forgot a script (it was
    restarted) is sent again once `scripts` are loaded: exchanges must allow that."""
    try:
        batch = next(exchange)
        while True:
            try:
                replies = send(client, batch) if batch else []
            except NoScriptError:
                send(client, [("SCRIPT", "LOAD", source) for source in scripts])
                replies = send(client, batch)
            batch = exchange.send(replies)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def aexecute(client: redis.asyncio.Redis, exchange: Exchange[T], scripts: Iterable[str]) -> T:
    """`execute` on an asyncio client."""
    try:
        batch = next(exchange)
        while True:
            try:
                replies = await asend(client, batch) if batch else []
            except NoScriptError:
                await asend(client, [("SCRIPT", "LOAD", source) for source in scripts])
                replies = await asend(client, batch)
            batch = exchange.send(replies)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class AsyncClients:
    """One asyncio client per event loop: an asyncio connection belongs to the loop that opened
    it, and a process may run several (a worker's one loop, each `asyncio.run` of a caller's).

    Each client is closed when its loop shuts down, by whoever runs the loop: `asyncio.run`
    finalizes the loop's async generators before closing it (`shutdown_asyncgens`), and one
    such generator per client closes it. A client left open would outlive its loop and fail in
    the garbage collector with "Event loop is closed". A worker's loop never shuts down, so its
    client serves every delegation of the process."""

    def __init__(self, factory: Callable[[], redis.asyncio.Redis]) -> None:
        self._factory = factory
        # Each client with the generator that closes it, which the loop only holds weakly.
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, _Closer]] = {}
        self._lock = threading.Lock()

    def current(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None:
                client = self._factory()
                entry = self._by_loop[loop] = (client, _started(self._closed_at_shutdown(loop, client)))
        return entry[0]

    async def _closed_at_shutdown(
        self, loop: asyncio.AbstractEventLoop, client: redis.asyncio.Redis
    ) -> _Closer:
        try:
            yield
        finally:
            with self._lock:
                self._by_loop.pop(loop, None)
            await client.aclose()


def _started(generator: _Closer) -> _Closer:
    """Step `generator` to its first `yield`, which it reaches without awaiting anything: from
    then on the running loop tracks it, and finalizes it when the loop shuts down."""
    with contextlib.suppress(StopIteration):
        generator.__anext__().send(None)  # type: ignore[attr-defined]
    return generator
