"""Paths, scopes, URL selection and the run-scoped filesystem. File semantics themselves are
tested on every backend by `tests/conformance`."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda

from shared.extras import MissingExtraError
from shared.files import (
    FilesBackend,
    FilesConfigError,
    SharedFiles,
    open_store,
    read_text,
    recording_writes,
    shared_files,
    using_run,
)
from shared.files.memory import MemoryStore
from shared.files.paths import InvalidPathError, ancestors, children, normalize, normalize_file
from shared.files.redis import RedisStore
from shared.files.scopes import join_scope, run_scope, scope_name
from shared.files.workspace import DEFAULT_RUN, current_run
from shared.settings import Settings
from tests.conformance.test_async import run_async, run_blocking


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("/a//b/./c/", "/a/b/c"),
        ("/a/b..c", "/a/b..c"),
        ("/ünï cödé.md", "/ünï cödé.md"),
        ("~/.deepagents/preferences.md", "/~/.deepagents/preferences.md"),
        ("~", "/~"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("relative/a.txt", "absolute"),
        ("~user/a.txt", "absolute"),
        ("", "absolute"),
        ("/a/../b", "'..'"),
        ("/a\x00b", "NUL"),
        ("/new\nline", "control character"),
        ("/a\\b", "backslash"),
        ("/" + "x" * 300, "255 bytes"),
        ("/" + "/".join(["abcdefghij"] * 120), "1024 bytes"),
        ("/bad\udcff", "UTF-8"),
        (None, "string"),
    ],
)
def test_invalid_paths_say_which_rule_they_break(raw: Any, reason: str) -> None:
    with pytest.raises(InvalidPathError, match=reason):
        normalize(raw)


def test_the_root_is_not_a_file() -> None:
    with pytest.raises(InvalidPathError, match="root directory"):
        normalize_file("/")


def test_ancestors_index_every_directory_from_the_root() -> None:
    assert ancestors("/a/b/c.txt") == (("/", "a/"), ("/a", "b/"), ("/a/b", "c.txt"))
    assert ancestors("/top.txt") == (("/", "top.txt"),)


def test_children_read_directory_entries_back_into_paths() -> None:
    assert children("/a", ["sub/", "b.txt", "a.txt"]) == (["/a/a.txt", "/a/b.txt"], ["/a/sub"])
    assert children("/", ["x/", "top.md"]) == (["/top.md"], ["/x"])
    assert children("/a", []) == ([], [])


def test_scope_names() -> None:
    assert join_scope("", "memories") == "memories"
    assert join_scope("runs", "r-1") == "runs/r-1"
    for bad in ("", "a//b", "../x", "a/./b", "a:b", "a b"):
        with pytest.raises(ValueError, match="invalid scope name"):
            scope_name(bad)


def test_run_scopes_hash_ids_that_are_not_plain_names() -> None:
    assert run_scope("run-1.a_b") == "runs/run-1.a_b"
    hashed = run_scope("../other-run")
    assert hashed.startswith("runs/")
    assert ".." not in hashed
    assert run_scope("user:42/thread") != run_scope("user:42/thread2")
    assert scope_name(run_scope("x" * 100)) == run_scope("x" * 100)


def test_open_store_by_url(tmp_path: Any) -> None:
    redis_store = open_store("redis://localhost:6390/2#team:files")
    assert isinstance(redis_store, RedisStore)
    assert redis_store.namespace == "team:files"
    assert isinstance(open_store("memory://tests"), MemoryStore)
    assert type(open_store(f"file://{tmp_path}")).__name__ == "LocalStore"
    assert type(open_store("s3://bucket/prefix")).__name__ == "S3Store"


@pytest.mark.parametrize(
    ("url", "message"),
    [("ftp://host/x", "unknown scheme 'ftp'"), ("s3://", "bucket"), ("file://relative/x", "file")],
)
def test_open_store_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(FilesConfigError, match=message):
        open_store(url)


def test_an_s3_url_without_boto3_says_which_extra_brings_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "shared.files.s3", raising=False)  # imported again, without it

    with pytest.raises(MissingExtraError) as caught:
        open_store("s3://bucket/prefix")

    assert str(caught.value) == "an s3:// files URL needs boto3: pip install 'taskforce[s3]'"


def test_shared_files_needs_a_url() -> None:
    with pytest.raises(FilesConfigError, match="TASKFORCE_FILES_URL"):
        shared_files(Settings(_env_file=None, redis_url=None, files_url=None))  # type: ignore[call-arg]


def test_routes_must_be_directories_of_their_own() -> None:
    with pytest.raises(ValueError, match="must look like '/name/'"):
        Settings(_env_file=None, files_routes={"data": "memory://x"})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="taskforce's own"):
        Settings(_env_file=None, files_routes={"/memories/": "memory://x"})  # type: ignore[call-arg]


@pytest.fixture
def files() -> SharedFiles:
    return SharedFiles(MemoryStore(uuid.uuid4().hex), workspace_ttl_s=60)


def test_runs_cannot_see_each_others_workspace(files: SharedFiles) -> None:
    first, second = files.for_run("run-a"), files.for_run("run-b")
    first.write("/notes.md", "run a's notes")

    assert second.read("/notes.md").error == "File '/notes.md' not found"
    assert [entry["path"] for entry in second.ls("/").entries or []] == ["/memories/", "/skills/"]
    assert second.grep("notes").matches == []
    assert read_text(first, "/notes.md") == "run a's notes"


def test_memories_and_skills_are_shared_by_all_runs(files: SharedFiles) -> None:
    files.for_run("run-a").write("/memories/prefs.md", "tabs, not spaces")
    files.for_run("run-a").write("/skills/sql/SKILL.md", "---\nname: sql\n---\n")

    later = files.for_run("run-z")
    assert read_text(later, "/memories/prefs.md") == "tabs, not spaces"
    assert read_text(files.memories, "/prefs.md") == "tabs, not spaces"
    assert read_text(later, "/skills/sql/SKILL.md").startswith("---")


def test_user_routes_mount_other_stores() -> None:
    datasets = FilesBackend(MemoryStore(uuid.uuid4().hex))
    datasets.write("/q3.csv", "a,b\n")
    files = SharedFiles(MemoryStore(uuid.uuid4().hex), routes={"/datasets/": datasets})

    assert read_text(files.for_run("any"), "/datasets/q3.csv") == "a,b\n"


def test_workspace_scopes_carry_the_ttl(files: SharedFiles) -> None:
    workspace = files.workspace("run-a")
    assert isinstance(workspace.store, MemoryStore)
    assert workspace.store.ttl_s == 60


def test_the_run_backend_follows_using_run(files: SharedFiles) -> None:
    backend = files.backend()
    with using_run("run-a"):
        backend.write("/a.txt", "a")
    with using_run("run-b"):
        assert backend.read("/a.txt").error is not None
    assert read_text(files.for_run("run-a"), "/a.txt") == "a"


def test_the_run_backend_answers_every_operation_as_the_run_does(files: SharedFiles) -> None:
    with using_run("run-a"):
        blocking = run_blocking(files.backend(), "/blocking")
        awaited = asyncio.run(run_async(files.backend(), "/awaited"))

    assert blocking == awaited == run_blocking(files.for_run("run-b"), "/direct")
    assert [entry["path"] for entry in files.for_run("run-a").ls("/").entries or []] == [
        "/awaited/",
        "/blocking/",
        "/memories/",
        "/skills/",
    ]


def test_the_run_backend_falls_back_to_the_graph_thread_id(files: SharedFiles) -> None:
    backend = files.backend()
    seen: RunnableLambda[None, tuple[str, str | None]] = RunnableLambda(
        lambda _: (current_run(), backend.write("/t.txt", "t").path)
    )

    assert seen.invoke(None, {"configurable": {"thread_id": "thread-7"}}) == ("thread-7", "/t.txt")
    assert read_text(files.for_run("thread-7"), "/t.txt") == "t"
    assert current_run() == DEFAULT_RUN


def test_recording_writes_collects_written_paths_once(files: SharedFiles) -> None:
    workspace = files.for_run("run-a")
    with recording_writes() as written:
        workspace.write("/a.txt", "1")
        workspace.edit("/a.txt", "1", "2")
        workspace.upload_files([("/b.bin", b"\xff")])
        workspace.read("/a.txt")
    workspace.write("/c.txt", "outside")

    assert written == ["/a.txt", "/b.bin"]


def test_read_text_of_a_missing_path(files: SharedFiles) -> None:
    with pytest.raises(FileNotFoundError, match="file_not_found"):
        read_text(files.for_run("run-a"), "/missing.txt")
