"""The shared files: one filesystem the main agent and every worker see at the same paths.

This first backend keeps each file as a field of one Redis hash. It reuses deepagents'
`StateBackend` for all file semantics (line windows, edits, literal grep, glob) and replaces
only where files live, so behaviour matches what deepagents users already know. Reads are
lazy: one file costs one `HGET`, a listing one `HSCAN`, never a download of everything.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import redis
from deepagents.backends import StateBackend
from deepagents.backends.protocol import BackendProtocol

from shared.settings import Settings

DEFAULT_FILES_KEY = "taskforce:files"
_written: ContextVar[list[str] | None] = ContextVar("taskforce_written_paths", default=None)


class FilesConfigError(ValueError):
    """The files URL names a backend that does not exist here."""


@contextlib.contextmanager
def recording_writes() -> Iterator[list[str]]:
    """Collect the paths written while the block runs: a worker reports them as artifacts.

    A context variable rather than a per-delegation backend, so that one compiled subagent
    (and its backend) can serve many delegations at once.
    """
    paths: list[str] = []
    token = _written.set(paths)
    try:
        yield paths
    finally:
        _written.reset(token)


class _RedisFiles(Mapping[str, Any]):
    """A read-only view of the hash that fetches only what is asked for."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._seen: dict[str, Any] = {}

    def __getitem__(self, path: str) -> Any:
        if path not in self._seen:
            raw = self._client.hget(self._key, path)
            if raw is None:
                raise KeyError(path)
            self._seen[path] = json.loads(raw)
        return self._seen[path]

    def __iter__(self) -> Iterator[str]:
        for field, raw in self._client.hscan_iter(self._key, count=500):
            path = field.decode() if isinstance(field, bytes) else field
            self._seen[path] = json.loads(raw)
            yield path

    def __len__(self) -> int:
        return int(self._client.hlen(self._key))


class RedisFilesBackend(StateBackend):
    """deepagents' file semantics over a Redis hash shared by every process."""

    def __init__(self, client: redis.Redis, key: str = DEFAULT_FILES_KEY) -> None:
        super().__init__()
        self.client = client
        self.key = key

    def _read_files(self) -> Any:
        return _RedisFiles(self.client, self.key)

    def _send_files_update(self, update: dict[str, Any]) -> None:
        removed = [path for path, data in update.items() if data is None]
        stored: dict[Any, str] = {path: json.dumps(data) for path, data in update.items() if data is not None}
        with self.client.pipeline(transaction=True) as pipe:
            if stored:
                pipe.hset(self.key, mapping=stored)
            if removed:
                pipe.hdel(self.key, *removed)
            pipe.execute()
        written = _written.get()
        if written is not None:
            written.extend(path for path in stored if path not in written)


def read_text(backend: BackendProtocol, path: str) -> str:
    """Whole-file read for code (tools, the CLI), without the line windows the model gets."""
    response = backend.download_files([path])[0]
    if response.content is None:
        raise FileNotFoundError(f"{path}: {response.error}")
    return response.content.decode("utf-8")


def files_backend(settings: Settings) -> BackendProtocol:
    """The shared files named by `files_url`, or by `redis_url` when that is unset."""
    url = settings.files_url or settings.redis_url
    if url is None:
        raise FilesConfigError("no shared files configured: set TASKFORCE_FILES_URL or TASKFORCE_REDIS_URL")
    parts = urlsplit(url)
    if parts.scheme in {"redis", "rediss", "unix"}:
        key = parts.fragment or DEFAULT_FILES_KEY
        return RedisFilesBackend(redis.Redis.from_url(url.split("#", 1)[0]), key)
    raise FilesConfigError(f"files URL {url!r}: scheme {parts.scheme!r} is not supported; use redis://")
