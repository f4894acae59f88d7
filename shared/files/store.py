"""The few primitives a place that keeps bytes must offer to become a deepagents filesystem.

File semantics (line windows, exact-match edits, literal grep, glob rules, error messages) live
once, in `backend`; a store only moves bytes and metadata. Each primitive has a blocking and
an async form so that the async tools of an agent never block its event loop on I/O: Redis
answers both natively, S3 runs its blocking client in a thread.

Edits are optimistic: a store returns a version token with every file and `save` accepts an
expected version, so a concurrent writer is detected by the store and the edit is retried,
never silently overwritten.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()
"""`save(expect=ANY)` writes whatever is there."""

ABSENT: Final = ""
"""`save(expect=ABSENT)` writes only if no file exists yet."""

Expect = str | _Any


def is_binary(content: bytes) -> bool:
    """Content that is not UTF-8 text: agents see it base64-encoded, as deepagents shows it."""
    if content.isascii():  # much cheaper than decoding, and most text is ASCII
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def now_iso() -> str:
    """Timestamps in the form deepagents writes them, so listings sort alike on every backend."""
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Entry:
    """One file as a listing sees it: no content."""

    path: str
    size: int
    modified_at: str


@dataclass(frozen=True, slots=True)
class Stored:
    """One file with its content. `binary` files are presented to agents as base64."""

    content: bytes
    binary: bool
    created_at: str
    modified_at: str
    version: str


@dataclass(frozen=True, slots=True)
class Listing:
    """The direct children of one directory; `directories` are absolute paths without a trailing
    slash (`/a/b`)."""

    files: list[Entry]
    directories: list[str]


class Store(abc.ABC):
    """Where files live. Paths given to a store are always normalised and absolute."""

    @abc.abstractmethod
    def scope(self, name: str, *, ttl_s: int | None = None) -> Store:
        """A store over a keyspace of its own (`memories`, `runs/<id>`): no path in one scope
        reaches a sibling scope. On S3 and `file://` a scope is a prefix (a directory) of its
        parent, so the parent sees it; `SharedFiles` only uses sibling scopes. With `ttl_s`,
        files may vanish that many seconds after their last write, where the store can expire
        files natively (Redis); others keep `ttl_s` for their owner to act on."""

    @abc.abstractmethod
    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        """Each path's file, or None where there is none; one round trip where the store allows."""

    @abc.abstractmethod
    def save(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        """Store a file and index it under its directories; the new version, or None when
        `expect` did not match what is stored. An overwrite keeps the first `created_at`.
        Whether the file is binary is read off its bytes (`is_binary`), when the store needs it."""

    @abc.abstractmethod
    def listing(self, directory: str) -> Listing:
        """The files and subdirectories directly inside `directory`."""

    @abc.abstractmethod
    def walk(self, directory: str) -> list[Entry]:
        """Every file at any depth below `directory`."""

    @abc.abstractmethod
    def remove(self, paths: Sequence[str]) -> int:
        """Delete files and drop them from their directories; how many existed."""

    async def aload(self, paths: Sequence[str]) -> list[Stored | None]:
        return await asyncio.to_thread(self.load, paths)

    async def asave(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        return await asyncio.to_thread(lambda: self.save(path, content, expect=expect, created_at=created_at))

    async def alisting(self, directory: str) -> Listing:
        return await asyncio.to_thread(self.listing, directory)

    async def awalk(self, directory: str) -> list[Entry]:
        return await asyncio.to_thread(self.walk, directory)

    async def aremove(self, paths: Sequence[str]) -> int:
        return await asyncio.to_thread(self.remove, paths)
