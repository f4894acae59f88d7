"""A main agent's `backend=` of deepagents' classes, described for workers and rebuilt there:
state parts on the run's shared workspace, store parts on the subagent's store under the
namespace the main agent computed, other parts as they were."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from deepagents.backends import CompositeBackend, FilesystemBackend, StateBackend, StoreBackend
from deepagents.backends.utils import create_file_data
from langgraph.store.memory import InMemoryStore

from orchestrator.backends import travelling_backend
from orchestrator.seeded_files import SeededFiles, SeedingError
from shared.files import SharedFiles, read_text, shared_files, using_run, workspace_backend
from shared.files.layout import DelegatedNamespace, rebuild, using_store_namespaces
from shared.files.memory import MemoryStore
from shared.files.workspace import RunBackend, WorkspaceBackend
from shared.schemas import BackendLayout, BackendPart
from shared.settings import Settings


@pytest.fixture
def files() -> SharedFiles:
    return SharedFiles(MemoryStore("backends"))


def _user_memories(runtime: Any) -> tuple[str, ...]:
    return ("memories", runtime.context["user_id"])


def test_the_guides_composite_travels_as_its_layout(files: SharedFiles, tmp_path: Path) -> None:
    given = CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(namespace=_user_memories),
            "/data/": FilesystemBackend(root_dir=tmp_path, virtual_mode=True),
        },
    )

    travelling = travelling_backend(given, files, None)

    assert travelling.layout == BackendLayout(
        default=BackendPart(kind="workspace"),
        routes={
            "/memories/": BackendPart(kind="store"),
            "/data/": BackendPart(kind="filesystem", root_dir=str(tmp_path), virtual_mode=True),
        },
    )
    assert isinstance(travelling.main, CompositeBackend)
    assert isinstance(travelling.main.default, WorkspaceBackend)
    assert travelling.main.routes["/memories/"] is given.routes["/memories/"]
    assert dict(travelling.namespaces) == {"/memories/": _user_memories}
    assert travelling.state_files
    assert travelling.seeds("/project/AGENTS.md")
    assert not travelling.seeds("/memories/prefs.txt")  # deepagents keeps it in state, unread
    assert not travelling.seeds("/data/x.csv")


@pytest.mark.parametrize(
    ("given", "state_files", "seeds"),
    [(None, True, True), ("shared", False, True), (StoreBackend(namespace=_user_memories), False, False)],
    ids=["default", "the shared files given", "a store alone"],
)
def test_which_backends_take_files_given_to_invoke(
    files: SharedFiles, given: object, state_files: bool, seeds: bool
) -> None:
    travelling = travelling_backend(files.backend() if given == "shared" else given, files, None)

    assert travelling.state_files is state_files
    assert travelling.seeds("/a.txt") is seeds


def test_a_store_part_may_use_the_main_agents_store_by_name(files: SharedFiles) -> None:
    store = InMemoryStore()

    travelling = travelling_backend(StoreBackend(namespace=_user_memories, store=store), files, store)

    assert travelling.layout == BackendLayout(default=BackendPart(kind="store"))


def test_a_worker_rebuilds_state_parts_on_the_runs_workspace_and_store_parts_in_its_namespace(
    files: SharedFiles,
) -> None:
    layout = BackendLayout(
        default=BackendPart(kind="workspace"), routes={"/memories/": BackendPart(kind="store")}
    )
    store = InMemoryStore()

    rebuilt = rebuild(layout, files)
    assert isinstance(rebuilt, CompositeBackend)
    routed = rebuilt.routes["/memories/"]
    assert isinstance(routed, StoreBackend)
    backend = CompositeBackend(
        default=rebuilt.default,
        routes={"/memories/": StoreBackend(namespace=DelegatedNamespace("/memories/"), store=store)},
    )
    with using_run("run-a"), using_store_namespaces({"/memories/": ("memories", "ada")}):
        assert backend.write("/notes.md", "workspace").error is None
        assert backend.write("/memories/prefs.txt", "tea").error is None

    assert read_text(files.workspace("run-a"), "/notes.md") == "workspace"
    item = store.get(("memories", "ada"), "/prefs.txt")
    assert item is not None
    assert item.value["content"] == "tea"


def test_a_store_part_without_its_delegations_namespace_says_so() -> None:
    with pytest.raises(RuntimeError, match="no store namespace for '/memories/'"):
        DelegatedNamespace("/memories/")(None)


def test_files_given_to_invoke_are_written_and_leave_the_state(files: SharedFiles) -> None:
    seeding = SeededFiles(travelling_backend(None, files, None))
    state = {
        "files": {
            "/project/AGENTS.md": create_file_data("conventions"),
            "~/.deepagents/preferences.md": create_file_data("terse"),
            "/logo.png": {"content": base64.b64encode(b"\x89PNG").decode(), "encoding": "base64"},
        }
    }

    with using_run("run-b"):
        update = seeding.before_agent(state, None)  # type: ignore[arg-type]

    assert update == {"files": dict.fromkeys(state["files"])}
    workspace = files.workspace("run-b")
    assert read_text(workspace, "/project/AGENTS.md") == "conventions"
    assert read_text(workspace, "/~/.deepagents/preferences.md") == "terse"
    assert workspace.download_files(["/logo.png"])[0].content == b"\x89PNG"
    assert seeding.before_agent({"messages": []}, None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "message"),
    [({"text": "x"}, "not a deepagents file"), (create_file_data("x"), "cannot be written")],
)
def test_a_file_that_cannot_be_seeded_is_named(files: SharedFiles, data: Any, message: str) -> None:
    seeding = SeededFiles(travelling_backend(None, files, None))
    path = "/ok.txt" if "text" in data else "/" + "x" * 300

    with pytest.raises(SeedingError, match=message):
        seeding.before_agent({"files": {path: data}}, None)  # type: ignore[arg-type]


def test_the_shared_files_given_as_backend_stay_as_they_are(files: SharedFiles) -> None:
    given = files.backend()

    travelling = travelling_backend(given, files, None)

    assert travelling.main is given
    assert isinstance(travelling.main, RunBackend)
    assert travelling.layout is None


def test_workspace_backend_is_the_current_runs_workspace_opened_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TASKFORCE_FILES_URL", "memory://workspace-backend")
    monkeypatch.setenv("TASKFORCE_REDIS_URL", "redis://unused:6379/0")
    backend = workspace_backend()  # what a registry module builds at import, before any settings

    with using_run("run-c"):
        assert backend.write("/conversation_history/t.md", "history").error is None

    assert read_text(shared_files(Settings()).workspace("run-c"), "/conversation_history/t.md") == "history"
