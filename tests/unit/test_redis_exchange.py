"""Asyncio Redis clients live and die with their event loop."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import fakeredis

from shared.redis_exchange import AsyncClients


class _CountedClient(fakeredis.FakeAsyncRedis):
    closed: ClassVar[list[_CountedClient]] = []

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        _CountedClient.closed.append(self)
        await super().aclose(close_connection_pool)


def test_a_loop_shares_one_client_and_closes_it_when_it_shuts_down() -> None:
    _CountedClient.closed.clear()
    clients = AsyncClients(_CountedClient)

    async def twice() -> tuple[object, object]:
        return clients.current(), clients.current()

    first, again = asyncio.run(twice())
    assert first is again
    assert _CountedClient.closed == [first]

    second, _ = asyncio.run(twice())
    assert second is not first, "a new loop gets a client of its own"
    assert _CountedClient.closed == [first, second]
