"""The main agent's `backend=` rebuilt on a worker, as deepagents gives it to every subagent.

A backend object cannot travel, but one made of deepagents' own classes can be described
(`shared.schemas.BackendLayout`) and rebuilt from the description: a `StateBackend` part
becomes the run's shared workspace (what the thread's state is in deepagents, seen by every
machine), a `StoreBackend` part a `StoreBackend` on the subagent's store (`runtime.store`, the
deployment's store), a `FilesystemBackend` part the same directory, which every worker mounts.

A `StoreBackend`'s namespace is computed by a function of the run's `Runtime` (its context, the
user...), usually a lambda, which cannot travel either. The main agent computes it when it
sends a delegation, from its own runtime, which is the one deepagents' in-process subagent
would see, and the delegation carries the result (`Delegation.store_namespaces`): the rebuilt
part reads it back here, for the delegation being run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from deepagents.backends import CompositeBackend, FilesystemBackend, StoreBackend
from deepagents.backends.protocol import BackendProtocol

from shared.bound import bound
from shared.files.workspace import SharedFiles, WorkspaceBackend
from shared.schemas import BackendLayout, BackendPart

DEFAULT_MOUNT = ""
"""The mount of a layout's default part, where its routes are keyed by their prefixes."""

_namespaces: ContextVar[Mapping[str, tuple[str, ...]] | None] = ContextVar(
    "taskforce_store_namespaces", default=None
)


def using_store_namespaces(
    namespaces: Mapping[str, tuple[str, ...]],
) -> contextlib.AbstractContextManager[Mapping[str, tuple[str, ...]]]:
    """`store` parts use these namespaces, by mount, for the file operations of this block."""
    return bound(_namespaces, namespaces)


@dataclass(frozen=True)
class DelegatedNamespace:
    """A rebuilt `StoreBackend`'s namespace factory: the namespace the main agent's own factory
    gave for the delegation being run."""

    mount: str

    def __call__(self, runtime: Any) -> tuple[str, ...]:
        namespaces = _namespaces.get() or {}
        if self.mount not in namespaces:
            raise RuntimeError(
                f"no store namespace for {self.mount or 'the default part'!r}: the delegation carried none"
            )
        return namespaces[self.mount]


def rebuild(layout: BackendLayout, files: SharedFiles) -> BackendProtocol:
    """The backend `layout` describes, its workspace parts on `files`."""
    default = _part(layout.default, DEFAULT_MOUNT, files)
    if not layout.routes:
        return default
    return CompositeBackend(
        default=default, routes={prefix: _part(part, prefix, files) for prefix, part in layout.routes.items()}
    )


def _part(part: BackendPart, mount: str, files: SharedFiles) -> BackendProtocol:
    if part.kind == "workspace":
        return WorkspaceBackend(files)
    if part.kind == "store":
        # No store of its own: the subagent's (`runtime.store`), which the worker opened.
        return StoreBackend(namespace=DelegatedNamespace(mount))
    if part.kind == "filesystem":
        return FilesystemBackend(root_dir=part.root_dir, virtual_mode=bool(part.virtual_mode))
    return files.backend()
