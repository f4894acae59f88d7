"""The main agent's `backend=`, made one that workers rebuild (`shared.files.layout`).

deepagents gives the main agent's backend to every subagent. taskforce describes it part by
part, refusing, with the part named, any it cannot rebuild on a worker, and gives the main agent
the same backend with each `StateBackend` replaced by the run's shared workspace: deepagents
keeps those files in the thread's state, which no worker sees. Routes, and the prompt
deepagents derives from them, stay as given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deepagents.backends import CompositeBackend, FilesystemBackend, StateBackend, StoreBackend
from deepagents.backends.protocol import BackendProtocol
from langgraph.runtime import get_runtime
from langgraph.store.base import BaseStore

from orchestrator.parity import UnsupportedArgumentError
from shared.files.layout import DEFAULT_MOUNT
from shared.files.workspace import RunBackend, SharedFiles, WorkspaceBackend
from shared.schemas import BackendLayout, BackendPart

NamespaceFactory = Callable[[Any], tuple[str, ...]]

_INSTANCE_FORM = (
    "CompositeBackend(default=StateBackend(), routes={'/memories/': "
    "StoreBackend(namespace=lambda runtime: ('memories',))})"
)


@dataclass(frozen=True)
class TravellingBackend:
    """The main agent's backend, and what its delegations carry so workers rebuild it."""

    main: BackendProtocol
    layout: BackendLayout | None = None
    """Unset: taskforce's shared files, which workers open from their settings."""
    namespaces: Mapping[str, NamespaceFactory] = field(default_factory=dict)
    """The `StoreBackend` parts' namespace factories, by mount."""
    default: bool = False
    """No `backend=` was given: the shared files stand for deepagents' default `StateBackend`."""

    @property
    def state_files(self) -> bool:
        """Whether deepagents would keep files in the thread's state, and take them as
        `invoke({"files": ...})`: with its default backend, or one with a `StateBackend` part."""
        if self.layout is None:
            return self.default
        parts = [self.layout.default, *self.layout.routes.values()]
        return any(part.kind == "workspace" for part in parts)

    def store_namespaces(self) -> dict[str, tuple[str, ...]]:
        """Each store part's namespace for the running graph, as its `StoreBackend` computes it."""
        if not self.namespaces:
            return {}
        runtime = get_runtime()
        return {mount: tuple(factory(runtime)) for mount, factory in self.namespaces.items()}

    def seeds(self, path: str) -> bool:
        """Whether a file given as `invoke({"files": ...})` lands where agents read it: where
        deepagents would read it from the thread's state. Under taskforce's own files, anywhere."""
        if self.layout is None:
            return True
        backend = self.main
        if isinstance(backend, CompositeBackend):
            backend = next(
                (routed for prefix, routed in backend.sorted_routes if path.startswith(prefix)),
                backend.default,
            )
        return isinstance(backend, WorkspaceBackend)


def travelling_backend(backend: object, files: SharedFiles, store: BaseStore | None) -> TravellingBackend:
    """`backend=` as the main agent and workers use it; `files` hold the run's workspace."""
    if backend is None:
        return TravellingBackend(files.backend(), default=True)
    if isinstance(backend, RunBackend):
        return TravellingBackend(backend)
    if callable(backend) and not isinstance(backend, BackendProtocol):
        raise UnsupportedArgumentError(
            "backend: a backend factory, which deepagents 0.7 refuses too (factories were removed); "
            f"pass the instance, e.g. {_INSTANCE_FORM}"
        )
    if not isinstance(backend, CompositeBackend):
        part, main, namespace = _part(backend, "backend", store, files)
        return TravellingBackend(main, BackendLayout(default=part), _named(DEFAULT_MOUNT, namespace))
    default, main_default, namespace = _part(backend.default, "backend.default", store, files)
    namespaces = _named(DEFAULT_MOUNT, namespace)
    routes: dict[str, BackendPart] = {}
    main_routes: dict[str, BackendProtocol] = {}
    for prefix, routed in backend.routes.items():
        routes[prefix], main_routes[prefix], namespace = _part(
            routed, f"backend.routes[{prefix!r}]", store, files
        )
        namespaces |= _named(prefix, namespace)
    main = CompositeBackend(default=main_default, routes=main_routes, artifacts_root=backend.artifacts_root)
    return TravellingBackend(main, BackendLayout(default=default, routes=routes), namespaces)


def _named(mount: str, namespace: NamespaceFactory | None) -> dict[str, NamespaceFactory]:
    return {mount: namespace} if namespace is not None else {}


def _part(
    backend: object, where: str, store: BaseStore | None, files: SharedFiles
) -> tuple[BackendPart, BackendProtocol, NamespaceFactory | None]:
    """How a worker rebuilds one part, what the main agent uses for it, its namespace factory."""
    if type(backend) is StateBackend:
        return BackendPart(kind="workspace"), WorkspaceBackend(files), None
    if type(backend) is StoreBackend:
        own_store = _private(backend, "_store")
        if own_store is not None and own_store is not store:
            raise UnsupportedArgumentError(
                f"{where}: a StoreBackend with a store of its own, which workers cannot open; give the "
                "store to create_orchestrator(store=...) and leave the StoreBackend's unset"
            )
        return BackendPart(kind="store"), backend, _private(backend, "_namespace")
    if type(backend) is FilesystemBackend:
        part = BackendPart(kind="filesystem", root_dir=str(backend.cwd), virtual_mode=backend.virtual_mode)
        return part, backend, None
    if isinstance(backend, RunBackend):
        return BackendPart(kind="shared"), backend, None
    raise UnsupportedArgumentError(
        f"{where}: a {type(backend).__name__}, which workers cannot rebuild; use StateBackend, StoreBackend, "
        "FilesystemBackend (on a directory every worker mounts at the same path) or taskforce's shared "
        "files (leave backend unset)"
    )


def _private(backend: StoreBackend, name: str) -> Any:
    """`StoreBackend` keeps its arguments in private attributes (deepagents 0.7.32); a version
    that renames them fails here, at build time, rather than rebuilding the wrong part."""
    if not hasattr(backend, name):
        raise UnsupportedArgumentError(
            f"backend: this deepagents' StoreBackend keeps no {name!r}; taskforce cannot rebuild it"
        )
    return getattr(backend, name)
