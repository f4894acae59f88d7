"""Shared files: one filesystem that the main agent and every worker see at the same paths.

`TASKFORCE_FILES_URL` picks where files live:

- `redis://host:port/db#namespace` (also `rediss://`, `unix://`): the default, on the broker's Redis;
- `s3://bucket/prefix`: S3 or anything speaking its API (endpoint and credentials from the usual
  `AWS_*` settings, e.g. `AWS_ENDPOINT_URL` for MinIO);
- `file:///dir`: a directory, local or on a network disk all machines mount;
- `memory://name`: this process only, for tests.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from deepagents.backends.protocol import BackendProtocol

from shared.files.backend import FilesBackend, recording_writes
from shared.files.paths import InvalidPathError
from shared.files.store import Store
from shared.files.workspace import SharedFiles, WorkspaceBackend, current_run, using_run
from shared.settings import Settings
from shared.urls import mask_url

__all__ = [
    "FilesBackend",
    "FilesConfigError",
    "InvalidPathError",
    "SharedFiles",
    "Store",
    "current_run",
    "open_store",
    "read_text",
    "recording_writes",
    "shared_files",
    "using_run",
    "workspace_backend",
]

SCHEMES = ("redis", "rediss", "unix", "s3", "file", "memory")


class FilesConfigError(ValueError):
    """The files URL cannot name a store."""


def open_store(url: str) -> Store:
    """The store a files URL names (see the module docstring). Stores are imported when named:
    a worker on Redis needs neither boto3 (the `s3` extra) nor the time to import it."""
    scheme = urlsplit(url).scheme
    try:
        if scheme in {"redis", "rediss", "unix"}:
            from shared.files.redis import DEFAULT_NAMESPACE, RedisStore

            address, _, namespace = url.partition("#")
            return RedisStore.from_url(address, namespace or DEFAULT_NAMESPACE)
        if scheme == "s3":
            from shared.files.s3 import S3Store

            return S3Store.from_url(url)
        if scheme == "file":
            from shared.files.local import LocalStore

            return LocalStore.from_url(url)
        if scheme == "memory":
            from shared.files.memory import MemoryStore

            return MemoryStore(url.removeprefix("memory:").lstrip("/"))
    except ValueError as error:
        raise FilesConfigError(f"files URL {mask_url(url)!r}: {error}") from error
    raise FilesConfigError(
        f"files URL {mask_url(url)!r}: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}"
    )


def shared_files(settings: Settings) -> SharedFiles:
    """The filesystem `settings` describe: `files_url`, or the broker's Redis when that is unset."""
    url = settings.files_url or settings.redis_url
    if url is None:
        raise FilesConfigError("no shared files configured: set TASKFORCE_FILES_URL or TASKFORCE_REDIS_URL")
    routes: dict[str, BackendProtocol] = {
        prefix: FilesBackend(open_store(route_url)) for prefix, route_url in settings.files_routes.items()
    }
    return SharedFiles(open_store(url), workspace_ttl_s=settings.files_workspace_ttl, routes=routes)


def read_text(backend: BackendProtocol, path: str) -> str:
    """Whole-file read for code (tools, the CLI), without the line windows the model gets."""
    response = backend.download_files([path])[0]
    if response.content is None:
        raise FileNotFoundError(f"{path}: {response.error}")
    return response.content.decode("utf-8")


def workspace_backend() -> BackendProtocol:
    """The current run's workspace, for a registry spec's middleware that takes a backend
    (deepagents' summarization, memory or skills middleware): what `StateBackend()` is to an
    in-process subagent, the thread's files, reached from every worker. Its files are opened
    from `Settings()` on first use, so a registry module can build it at import."""
    return _SettingsWorkspace()


@functools.cache
def _files_from_settings() -> SharedFiles:
    return shared_files(Settings())


class _SettingsWorkspace(WorkspaceBackend):
    def __init__(self) -> None:
        """Nothing to open yet: a registry is imported before settings are needed."""

    @property
    def files(self) -> SharedFiles:  # type: ignore[override]
        return _files_from_settings()
