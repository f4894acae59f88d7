"""The shared files in a local (or NFS) directory: bytes, versions and locks on a real disk."""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest

from shared.files.local import LOCK_NAME, LocalConfigError, LocalStore
from shared.files.paths import InvalidPathError
from shared.files.store import ABSENT, ANY, Entry, Listing, Stored


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "files")


def load(store: LocalStore, path: str) -> Stored:
    [stored] = store.load([path])
    assert stored is not None, path
    return stored


def write(store: LocalStore, path: str, content: bytes = b"x") -> str:
    version = store.save(path, content)
    assert version is not None
    return version


def increment(store: LocalStore, path: str) -> int:
    """Load, add one, save only if nobody wrote meanwhile; retry otherwise. Returns the retries."""
    retries = 0
    while True:
        [current] = store.load([path])
        value, expect = (0, ABSENT) if current is None else (int(current.content), current.version)
        if store.save(path, str(value + 1).encode(), expect=expect) is not None:
            return retries
        retries += 1


def increment_in_process(root: str, path: str, count: int, barrier: Any) -> None:
    store = LocalStore(Path(root))
    barrier.wait()
    for _ in range(count):
        increment(store, path)


def xattrs_supported(directory: Path) -> bool:
    probe = directory / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


# Round trips


def test_text_round_trip(store: LocalStore) -> None:
    version = write(store, "/notes/a.md", "héllo\nworld\n".encode())

    stored = load(store, "/notes/a.md")
    assert stored.content == "héllo\nworld\n".encode()
    assert stored.binary is False
    assert stored.version == version
    assert (store.root / "notes" / "a.md").read_bytes() == stored.content


def test_binary_round_trip_keeps_every_byte(store: LocalStore) -> None:
    data = bytes(range(256))
    store.save("/img.bin", data)

    stored = load(store, "/img.bin")
    assert stored.content == data
    assert stored.binary is True


def test_empty_file_round_trip(store: LocalStore) -> None:
    store.save("/empty.txt", b"")

    stored = load(store, "/empty.txt")
    assert stored.content == b""
    assert stored.binary is False
    assert store.walk("/") == [Entry("/empty.txt", 0, stored.modified_at)]


def test_binary_flag_follows_the_content_not_the_caller(store: LocalStore) -> None:
    store.save("/looks-binary.txt", b"plain text")

    assert load(store, "/looks-binary.txt").binary is False


def test_load_answers_each_path_in_order(store: LocalStore) -> None:
    write(store, "/a.txt", b"a")
    write(store, "/dir/b.txt", b"b")

    stored = store.load(["/dir/b.txt", "/missing.txt", "/a.txt", "/dir", "/a.txt/below"])

    assert [s.content if s else None for s in stored] == [b"b", None, b"a", None, None]


def test_paths_are_normalised(store: LocalStore) -> None:
    write(store, "/a//b/./c.txt", b"c")

    assert load(store, "/a/b/c.txt").content == b"c"
    with pytest.raises(InvalidPathError):
        store.load(["relative.txt"])


def test_no_temp_files_are_left_behind(store: LocalStore) -> None:
    for n in range(5):
        write(store, "/d/f.txt", str(n).encode())

    assert sorted(os.listdir(store.root / "d")) == sorted([LOCK_NAME, "f.txt"])


# Timestamps and versions


def test_modified_at_is_the_utc_mtime(store: LocalStore) -> None:
    write(store, "/a.txt")

    stored = load(store, "/a.txt")
    modified = datetime.fromisoformat(stored.modified_at)
    assert modified.utcoffset() == timedelta(0)
    assert modified.timestamp() == pytest.approx((store.root / "a.txt").stat().st_mtime, abs=1e-5)
    assert abs(modified.timestamp() - datetime.now().timestamp()) < 60


def test_overwrite_keeps_created_at(store: LocalStore, tmp_path: Path) -> None:
    if not xattrs_supported(tmp_path):
        pytest.skip("this filesystem has no user extended attributes")
    write(store, "/a.txt", b"one")
    first = load(store, "/a.txt")
    assert first.created_at == first.modified_at

    write(store, "/a.txt", b"two")
    second = load(store, "/a.txt")

    assert second.created_at == first.created_at
    assert second.modified_at > first.modified_at


def test_created_at_is_taken_for_a_new_file_only(store: LocalStore, tmp_path: Path) -> None:
    if not xattrs_supported(tmp_path):
        pytest.skip("this filesystem has no user extended attributes")
    store.save("/a.txt", b"one", created_at="2020-01-01T00:00:00+00:00")
    store.save("/a.txt", b"two", created_at="2024-01-01T00:00:00+00:00")

    assert load(store, "/a.txt").created_at == "2020-01-01T00:00:00+00:00"


def test_without_xattrs_created_at_is_the_mtime(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> NoReturn:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", unsupported)
    monkeypatch.setattr(os, "getxattr", unsupported)
    store.save("/a.txt", b"one", created_at="2020-01-01T00:00:00+00:00")
    write(store, "/a.txt", b"two")

    stored = load(store, "/a.txt")
    assert stored.created_at == stored.modified_at


def test_every_write_gets_a_new_version_even_with_the_same_bytes(store: LocalStore) -> None:
    versions = [write(store, "/same.txt", b"same") for _ in range(50)]

    assert len(set(versions)) == 50
    mtimes = [int(v.split(":")[0]) for v in versions]
    assert mtimes == sorted(mtimes)


def test_a_directory_or_a_file_parent_is_an_error_not_a_conflict(store: LocalStore) -> None:
    write(store, "/dir/a.txt")
    write(store, "/file.txt")

    with pytest.raises(ValueError, match="is a directory"):
        store.save("/dir", b"x")
    with pytest.raises(ValueError, match="parent directory is a file"):
        store.save("/file.txt/below.txt", b"x")
    with pytest.raises(ValueError, match="parent directory is a file"):
        store.save("/file.txt/deeper/below.txt", b"x")


def test_reserved_names_are_refused(store: LocalStore) -> None:
    with pytest.raises(InvalidPathError, match="reserved"):
        store.save(f"/{LOCK_NAME}", b"x")
    with pytest.raises(InvalidPathError, match="reserved"):
        store.load(["/a/.taskforce.tmp.1234/b"])


def test_a_symlink_out_of_the_store_is_refused(store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "escape").symlink_to(outside)

    with pytest.raises(InvalidPathError, match="outside"):
        store.save("/escape/a.txt", b"x")
    with pytest.raises(InvalidPathError, match="outside"):
        store.load(["/escape/a.txt"])
    assert store.listing("/") == Listing([], [])
    assert list(outside.iterdir()) == []


# Compare-and-swap


def test_absent_writes_only_a_new_file(store: LocalStore) -> None:
    assert store.save("/a.txt", b"one", expect=ABSENT) is not None
    assert store.save("/a.txt", b"two", expect=ABSENT) is None

    assert load(store, "/a.txt").content == b"one"


def test_stale_version_is_refused_and_current_accepted(store: LocalStore) -> None:
    stale = write(store, "/a.txt", b"one")
    current = write(store, "/a.txt", b"two")

    assert store.save("/a.txt", b"lost", expect=stale) is None
    new = store.save("/a.txt", b"three", expect=current)

    assert new is not None
    assert new not in (stale, current)
    stored = load(store, "/a.txt")
    assert (stored.content, stored.version) == (b"three", new)


def test_a_version_does_not_match_a_missing_file(store: LocalStore) -> None:
    version = write(store, "/a.txt")
    store.remove(["/a.txt"])

    assert store.save("/a.txt", b"x", expect=version) is None
    assert store.load(["/a.txt"]) == [None]


def test_any_overwrites(store: LocalStore) -> None:
    write(store, "/a.txt", b"one")

    assert store.save("/a.txt", b"two", expect=ANY) is not None
    assert load(store, "/a.txt").content == b"two"


def test_concurrent_increments_from_threads_lose_nothing(store: LocalStore) -> None:
    threads, rounds = 8, 25
    barrier = threading.Barrier(threads)
    retries: list[int] = []

    def work() -> None:
        barrier.wait()
        retries.extend(increment(store, "/counter") for _ in range(rounds))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert load(store, "/counter").content == str(threads * rounds).encode()
    assert len(retries) == threads * rounds


def test_concurrent_increments_from_processes_lose_nothing(store: LocalStore) -> None:
    context = multiprocessing.get_context("spawn")
    processes, rounds = 2, 20
    barrier = context.Barrier(processes)
    pool = [
        context.Process(target=increment_in_process, args=(str(store.root), "/counter", rounds, barrier))
        for _ in range(processes)
    ]
    for process in pool:
        process.start()
    for process in pool:
        process.join(timeout=60)

    assert [process.exitcode for process in pool] == [0] * processes
    assert load(store, "/counter").content == str(processes * rounds).encode()


# Listing and walking


def test_listing_shows_direct_children(store: LocalStore) -> None:
    write(store, "/top.txt", b"12345")
    write(store, "/a/one.txt")
    write(store, "/a/b/two.txt")
    write(store, "/c/d/three.txt")

    root = store.listing("/")
    assert [(e.path, e.size) for e in root.files] == [("/top.txt", 5)]
    assert root.directories == ["/a", "/c"]

    a = store.listing("/a")
    assert [e.path for e in a.files] == ["/a/one.txt"]
    assert a.directories == ["/a/b"]
    assert store.listing("/c") == Listing([], ["/c/d"])
    assert a.files[0].modified_at == load(store, "/a/one.txt").modified_at


def test_listing_of_nothing_is_empty(store: LocalStore) -> None:
    write(store, "/a.txt")

    assert store.listing("/missing") == Listing([], [])
    assert store.listing("/a.txt") == Listing([], [])
    assert LocalStore(store.root / "new").listing("/") == Listing([], [])


def test_lock_and_temp_files_stay_hidden(store: LocalStore) -> None:
    write(store, "/a/one.txt")
    (store.root / "a" / ".taskforce.tmp.left-by-a-crash").write_bytes(b"partial")
    assert (store.root / "a" / LOCK_NAME).exists()

    assert store.listing("/a") == Listing([Entry("/a/one.txt", 1, load(store, "/a/one.txt").modified_at)], [])
    assert [e.path for e in store.walk("/")] == ["/a/one.txt"]


def test_walk_finds_files_at_every_depth(store: LocalStore) -> None:
    for path in ["/z.txt", "/a/1.txt", "/a/b/2.txt", "/a/b/c/3.txt", "/d/4.txt"]:
        write(store, path, path.encode())

    assert [e.path for e in store.walk("/")] == [
        "/a/1.txt",
        "/a/b/2.txt",
        "/a/b/c/3.txt",
        "/d/4.txt",
        "/z.txt",
    ]
    assert [(e.path, e.size) for e in store.walk("/a/b")] == [("/a/b/2.txt", 10), ("/a/b/c/3.txt", 12)]
    assert store.walk("/missing") == []


# Removing


def test_remove_counts_what_existed_and_prunes_empty_directories(store: LocalStore) -> None:
    write(store, "/a/b/c/deep.txt")
    write(store, "/a/keep.txt")

    assert store.remove(["/a/b/c/deep.txt", "/a/b/c/deep.txt", "/missing.txt", "/a/b"]) == 1

    assert store.load(["/a/b/c/deep.txt"]) == [None]
    assert not (store.root / "a" / "b").exists()
    assert store.listing("/a") == Listing(
        [Entry("/a/keep.txt", 1, load(store, "/a/keep.txt").modified_at)], []
    )

    assert store.remove(["/a/keep.txt"]) == 1
    assert os.listdir(store.root) == []
    assert store.root.is_dir()


def test_remove_keeps_directories_still_in_use(store: LocalStore) -> None:
    write(store, "/a/b/one.txt")
    write(store, "/a/b/two.txt")
    write(store, "/a/c/three.txt")

    store.remove(["/a/b/one.txt"])
    assert [e.path for e in store.walk("/")] == ["/a/b/two.txt", "/a/c/three.txt"]
    store.remove(["/a/b/two.txt"])

    assert store.listing("/a").directories == ["/a/c"]


def test_writes_after_a_prune_recreate_the_directory(store: LocalStore) -> None:
    write(store, "/a/b/one.txt")
    store.remove(["/a/b/one.txt"])

    write(store, "/a/b/two.txt", b"2")

    assert load(store, "/a/b/two.txt").content == b"2"


def test_concurrent_writes_and_removes_in_one_directory(store: LocalStore) -> None:
    errors: list[BaseException] = []

    def churn(name: str) -> None:
        try:
            for n in range(30):
                write(store, f"/a/b/{name}.txt", str(n).encode())
                store.remove([f"/a/b/{name}.txt"])
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=churn, args=(f"f{n}",)) for n in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    assert os.listdir(store.root) == []


# Scopes


def test_scopes_are_isolated_subdirectories(store: LocalStore) -> None:
    memories = store.scope("memories")
    run = store.scope("runs/r-1", ttl_s=3600)
    write(memories, "/a.txt", b"memory")
    write(run, "/a.txt", b"run")

    assert load(memories, "/a.txt").content == b"memory"
    assert load(run, "/a.txt").content == b"run"
    assert store.load(["/a.txt"]) == [None]
    assert (store.root / "runs" / "r-1" / "a.txt").read_bytes() == b"run"
    assert (run.ttl_s, memories.ttl_s) == (3600, None)
    assert [e.path for e in store.scope("runs").walk("/")] == ["/r-1/a.txt"]


def test_remove_stops_at_the_scope_root(store: LocalStore) -> None:
    run = store.scope("runs/r-1")
    write(run, "/a/b.txt")

    run.remove(["/a/b.txt"])

    assert run.root.is_dir()
    assert os.listdir(run.root) == []


@pytest.mark.parametrize(
    "name",
    ["", "/", "/memories", "memories/", "a//b", ".", "..", "a/../b", "a/./b", "a b", "é", "a\\b", LOCK_NAME],
)
def test_scope_names_are_validated(store: LocalStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid scope name"):
        store.scope(name)


def test_scope_names_become_subdirectories(store: LocalStore) -> None:
    scoped = store.scope("runs/run-1.2_x")

    assert scoped.root == store.root / "runs" / "run-1.2_x"


# Configuration


@pytest.mark.parametrize("form", ["file://{}", "file:{}", "file://localhost{}"])
def test_from_url_accepts_local_absolute_directories(tmp_path: Path, form: str) -> None:
    root = tmp_path / "new dir" / "files"

    store = LocalStore.from_url(form.format(str(root).replace(" ", "%20")))

    assert store.root == root.resolve()
    assert root.is_dir()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket/prefix", "not a file URL"),
        ("/abs/dir", "not a file URL"),
        ("file://server/share", "names host 'server'"),
        ("file:relative/dir", "absolute directory"),
        ("file://", "absolute directory"),
        ("file:///dir?mode=x", "query or fragment"),
        ("file:///dir#x", "query or fragment"),
    ],
)
def test_from_url_refuses_anything_else(url: str, message: str) -> None:
    with pytest.raises(LocalConfigError, match=message):
        LocalStore.from_url(url)


def test_a_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")

    with pytest.raises(LocalConfigError, match="not a directory"):
        LocalStore(tmp_path / "file")


def test_async_forms(store: LocalStore) -> None:
    async def run() -> list[Stored | None]:
        await store.asave("/a.txt", b"async")
        return await store.aload(["/a.txt"])

    [stored] = asyncio.run(run())
    assert stored is not None
    assert stored.content == b"async"
