"""`agent.invoke({"messages": ..., "files": {...}})`, as deepagents' default backend takes it.

deepagents keeps a thread's files in its state, so the guide seeds memory, skills and inputs by
passing them in: `{"files": {"/project/AGENTS.md": create_file_data("...")}}`. taskforce keeps
them in the run's shared workspace, where workers see them too; so before the main agent's
first step, each given file is written there (where the agent's own `write_file` would put it)
and taken out of the state, which would otherwise bring a stale copy back over the agent's
later edits on the thread's next turn. Files that deepagents would keep in state but never
read (a path routed to another part of a `CompositeBackend`) are left in state, as there.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from deepagents.backends.protocol import FileData, FileUploadResponse
from deepagents.backends.utils import file_data_to_string
from deepagents.middleware.filesystem import FilesystemState
from langchain.agents.middleware.types import AgentMiddleware
from langgraph.runtime import Runtime

from orchestrator.backends import TravellingBackend


class SeedingError(ValueError):
    """A file given in `files` could not be written to the run's workspace."""


class SeededFiles(AgentMiddleware[Any, Any, Any]):
    """Moves the files given to `invoke` into the run's filesystem."""

    state_schema = FilesystemState

    def __init__(self, backend: TravellingBackend) -> None:
        super().__init__()
        self._backend = backend

    def _given(self, state: Mapping[str, Any]) -> dict[str, bytes]:
        files: Mapping[str, FileData] = state.get("files") or {}
        return {path: _content(path, data) for path, data in files.items() if self._backend.seeds(path)}

    def before_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        given = self._given(state)
        if not given:
            return None
        return _taken(given, self._backend.main.upload_files(list(given.items())))

    async def abefore_agent(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any] | None:
        given = self._given(state)
        if not given:
            return None
        return _taken(given, await self._backend.main.aupload_files(list(given.items())))


def _content(path: str, data: FileData) -> bytes:
    try:
        text = file_data_to_string(data)
    except (KeyError, TypeError) as error:
        raise SeedingError(f"files[{path!r}]: not a deepagents file (create_file_data): {error}") from None
    return base64.b64decode(text) if data.get("encoding") == "base64" else text.encode("utf-8")


def _taken(given: Mapping[str, bytes], responses: list[FileUploadResponse]) -> dict[str, Any]:
    for response in responses:
        if response.error is not None:
            raise SeedingError(f"files[{response.path!r}]: cannot be written: {response.error}")
    return {"files": dict.fromkeys(given)}
