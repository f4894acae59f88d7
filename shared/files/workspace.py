"""The filesystem every agent of a run sees, on the main process and on every worker alike.

- `/` is the run's workspace: offloaded tool results, conversation history, full reports and
  whatever the agents write. Each run has its own (`runs/<id>`), so runs cannot see or change
  each other's files, and workspaces expire after `files_workspace_ttl` seconds.
- `/memories/` is long-term memory (AGENTS.md and anything an agent learns), shared by all runs.
- `/skills/` holds SKILL.md folders, shared by all runs: editing a skill there changes what every
  worker loads on its next delegation, without a redeploy.
- Any further routes come from `files_routes`.

The run is found when a file is touched, not when an agent is built, because one compiled agent
serves many runs: first a `using_run` block (workers set it from the delegation, the CLI for its
run), then the LangGraph `thread_id` of the running graph, else the shared `default` workspace.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from deepagents.backends import CompositeBackend
from deepagents.backends.protocol import (
    BackendProtocol,
    DeleteResult,
    EditResult,
    FileDownloadResponse,
    FileUploadResponse,
    GlobResult,
    GrepResult,
    LsResult,
    ReadResult,
    WriteResult,
)
from langgraph.config import get_config

from shared.bound import bound
from shared.files.backend import FilesBackend
from shared.files.scopes import run_scope
from shared.files.store import Store

DEFAULT_RUN = "default"
MEMORIES = "/memories/"
SKILLS = "/skills/"

_current_run: ContextVar[str | None] = ContextVar("taskforce_run", default=None)


def using_run(run_id: str) -> contextlib.AbstractContextManager[str]:
    """File operations in this block use `run_id`'s workspace."""
    return bound(_current_run, run_id)


def current_run() -> str:
    """The run whose workspace `/` means right now."""
    run_id = _current_run.get()
    if run_id is not None:
        return run_id
    try:
        thread_id = (get_config().get("configurable") or {}).get("thread_id")
    except RuntimeError:  # outside a running graph
        thread_id = None
    return str(thread_id) if thread_id is not None else DEFAULT_RUN


class SharedFiles:
    """The scopes of one store, arranged as the filesystem agents see."""

    def __init__(
        self,
        store: Store,
        *,
        workspace_ttl_s: int | None = None,
        routes: Mapping[str, BackendProtocol] | None = None,
    ) -> None:
        self.store = store
        self.workspace_ttl_s = workspace_ttl_s or None
        self.memories = FilesBackend(store.scope("memories"))
        self.skills = FilesBackend(store.scope("skills"))
        self._routes = {MEMORIES: self.memories, SKILLS: self.skills, **(routes or {})}
        # Per instance, unlike lru_cache on the method, so the cache goes when this SharedFiles does.
        self._recent_runs = functools.lru_cache(maxsize=256)(self._compose)

    def workspace(self, run_id: str) -> FilesBackend:
        """One run's own files, as stored (without the shared routes)."""
        return FilesBackend(self.store.scope(run_scope(run_id), ttl_s=self.workspace_ttl_s))

    def for_run(self, run_id: str) -> CompositeBackend:
        """The whole filesystem as one run sees it."""
        return self._recent_runs(run_id)

    def _compose(self, run_id: str) -> CompositeBackend:
        return CompositeBackend(default=self.workspace(run_id), routes=dict(self._routes))

    def workspaces(self) -> list[str]:
        """The run ids that have a workspace."""
        return [directory.strip("/") for directory in self.store.scope("runs").listing("/").directories]

    def stale_workspaces(self, older_than_s: float, *, now: datetime | None = None) -> dict[str, list[str]]:
        """The workspaces nobody wrote to for `older_than_s` seconds: each run id with its files.

        For stores without expiry of their own (S3, `file://`), where each run is a directory
        under `runs/`. Redis expires workspace files by itself and rarely holds one this old.
        """
        runs = self.store.scope("runs")
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than_s)
        stale: dict[str, list[str]] = {}
        for directory in runs.listing("/").directories:
            entries = runs.walk(directory)
            if entries and max(datetime.fromisoformat(entry.modified_at) for entry in entries) < cutoff:
                stale[directory.strip("/")] = [entry.path for entry in entries]
        return stale

    def prune(self, older_than_s: float, *, now: datetime | None = None) -> list[str]:
        """Delete the workspaces `stale_workspaces` finds; their run ids."""
        stale = self.stale_workspaces(older_than_s, now=now)
        runs = self.store.scope("runs")
        for paths in stale.values():
            runs.remove(paths)
        return list(stale)

    def backend(self) -> RunBackend:
        """The filesystem of whichever run is current when a file is touched."""
        return RunBackend(self)


class ForwardingBackend(BackendProtocol):
    """Forwards every file operation to the backend `current()` picks for the call.

    One compiled agent serves many runs, so its backend cannot be any one run's: each call picks
    the run it is made for (see the module docstring).
    """

    def __init__(self, files: SharedFiles) -> None:
        self.files = files

    @abc.abstractmethod
    def current(self) -> BackendProtocol: ...

    def ls(self, path: str) -> LsResult:
        return self.current().ls(path)

    async def als(self, path: str) -> LsResult:
        return await self.current().als(path)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return self.current().read(file_path, offset, limit)

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return await self.current().aread(file_path, offset, limit)

    def grep(
        self, pattern: str, path: str | None = None, glob: str | None = None, *, max_count: int | None = None
    ) -> GrepResult:
        return self.current().grep(pattern, path, glob, max_count=max_count)

    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None, *, max_count: int | None = None
    ) -> GrepResult:
        return await self.current().agrep(pattern, path, glob, max_count=max_count)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        return self.current().glob(pattern, path)

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        return await self.current().aglob(pattern, path)

    def write(self, file_path: str, content: str) -> WriteResult:
        return self.current().write(file_path, content)

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        return await self.current().awrite(file_path, content)

    def edit(self, file_path: str, old_string: str, new_string: str, replace_all: bool = False) -> EditResult:
        return self.current().edit(file_path, old_string, new_string, replace_all)

    async def aedit(
        self, file_path: str, old_string: str, new_string: str, replace_all: bool = False
    ) -> EditResult:
        return await self.current().aedit(file_path, old_string, new_string, replace_all)

    def delete(self, file_path: str) -> DeleteResult:
        return self.current().delete(file_path)

    async def adelete(self, file_path: str) -> DeleteResult:
        return await self.current().adelete(file_path)

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return self.current().upload_files(files)

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return await self.current().aupload_files(files)

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return self.current().download_files(paths)

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return await self.current().adownload_files(paths)


class RunBackend(ForwardingBackend):
    """The whole filesystem of the current run: its workspace and the shared routes."""

    def current(self) -> CompositeBackend:
        return self.files.for_run(current_run())


class WorkspaceBackend(ForwardingBackend):
    """The current run's workspace alone: where a main agent's `StateBackend` keeps files in
    deepagents (the thread's state), made one place that the main agent and every worker see."""

    def current(self) -> BackendProtocol:
        return self.files.for_run(current_run()).default
