"""How an operation of `FilesBackend` talks to a `Store`, so that it is written once for both
its blocking and its async tool.

An operation is a generator that `yield from`s the requests it needs (`Load`, `Save`, ...) and
gets their answers back, as a coroutine awaits futures. `run` answers each request with the
store's blocking method, `arun` awaits the store's async twin. Each request names its store
method in code, so mypy checks its arguments and its answer.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.files.store import Entry, Expect, Listing, Store, Stored

T = TypeVar("T")
R = TypeVar("R")


class Request(abc.ABC, Generic[R]):
    """One store call an operation needs; `yield from` it to get the answer `R`."""

    __slots__ = ()

    @abc.abstractmethod
    def run(self, store: Store) -> R: ...

    @abc.abstractmethod
    async def arun(self, store: Store) -> R: ...

    def __iter__(self) -> Generator[Request[Any], Any, R]:
        answer: R = yield self
        return answer


@dataclass(frozen=True, slots=True)
class Load(Request[list[Stored | None]]):
    paths: Sequence[str]

    def run(self, store: Store) -> list[Stored | None]:
        return store.load(self.paths)

    async def arun(self, store: Store) -> list[Stored | None]:
        return await store.aload(self.paths)


@dataclass(frozen=True, slots=True)
class Save(Request[str | None]):
    path: str
    content: bytes
    expect: Expect
    created_at: str | None = None

    def run(self, store: Store) -> str | None:
        return store.save(self.path, self.content, expect=self.expect, created_at=self.created_at)

    async def arun(self, store: Store) -> str | None:
        return await store.asave(self.path, self.content, expect=self.expect, created_at=self.created_at)


@dataclass(frozen=True, slots=True)
class ListDir(Request[Listing]):
    directory: str

    def run(self, store: Store) -> Listing:
        return store.listing(self.directory)

    async def arun(self, store: Store) -> Listing:
        return await store.alisting(self.directory)


@dataclass(frozen=True, slots=True)
class Walk(Request[list[Entry]]):
    directory: str

    def run(self, store: Store) -> list[Entry]:
        return store.walk(self.directory)

    async def arun(self, store: Store) -> list[Entry]:
        return await store.awalk(self.directory)


@dataclass(frozen=True, slots=True)
class Remove(Request[int]):
    paths: Sequence[str]

    def run(self, store: Store) -> int:
        return store.remove(self.paths)

    async def arun(self, store: Store) -> int:
        return await store.aremove(self.paths)


@dataclass(frozen=True, slots=True)
class Sleep(Request[None]):
    """A pause that blocks only the blocking driver: the async one lets other tasks run."""

    seconds: float

    def run(self, store: Store) -> None:
        time.sleep(self.seconds)

    async def arun(self, store: Store) -> None:
        await asyncio.sleep(self.seconds)


Operation = Generator[Request[Any], Any, T]


def run(store: Store, operation: Operation[T]) -> T:
    answer: Any = None
    while True:
        try:
            request = operation.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        answer = request.run(store)


async def arun(store: Store, operation: Operation[T]) -> T:
    answer: Any = None
    while True:
        try:
            request = operation.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        answer = await request.arun(store)
