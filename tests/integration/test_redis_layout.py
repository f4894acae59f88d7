"""RedisStore on the real Redis: the documented key layout, workspace expiry, and asyncio
clients that close with their event loop."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from shared.files import SharedFiles
from shared.files.redis import RedisStore
from tests.conftest import require_redis
from tests.integration.conftest import REDIS_BASE_URL, TEST_DB

URL = f"{REDIS_BASE_URL}/{TEST_DB}"


@pytest.fixture
def namespace() -> Iterator[str]:
    require_redis(URL)
    name = f"tflayout:{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.unlink(*keys)


@pytest.fixture
def files(namespace: str) -> SharedFiles:
    return SharedFiles(RedisStore.from_url(URL, namespace), workspace_ttl_s=600)


def test_a_file_is_a_string_and_a_hash_and_each_directory_a_set(files: SharedFiles, namespace: str) -> None:
    files.for_run("r1").write("/a/b.txt", "hello")
    client = redis.Redis.from_url(URL)

    assert client.get(f"{namespace}:c:runs/r1:/a/b.txt") == b"hello"
    assert client.hget(f"{namespace}:f:runs/r1:/a/b.txt", "v") is not None
    assert client.smembers(f"{namespace}:d:runs/r1:/") == {b"a/"}
    assert client.smembers(f"{namespace}:d:runs/r1:/a") == {b"b.txt"}


def test_workspaces_expire_and_memories_do_not(files: SharedFiles, namespace: str) -> None:
    run = files.for_run("r1")
    run.write("/a/b.txt", "scratch")
    run.write("/memories/prefs.md", "keep")
    client = redis.Redis.from_url(URL)

    workspace_keys = [f"{namespace}:{kind}:runs/r1:/a/b.txt" for kind in "cf"]
    for key in [*workspace_keys, f"{namespace}:d:runs/r1:/a", f"{namespace}:d:runs/r1:/"]:
        assert 0 < client.ttl(key) <= 600, key
    assert client.ttl(f"{namespace}:c:memories:/prefs.md") == -1
    assert client.ttl(f"{namespace}:f:memories:/prefs.md") == -1
    assert client.ttl(f"{namespace}:d:memories:/") == -1


def test_entries_whose_files_expired_are_left_out(files: SharedFiles, namespace: str) -> None:
    run = files.for_run("r1")
    run.write("/d/gone.txt", "expired")
    run.write("/d/kept.txt", "still here")
    run.write("/old/x.txt", "expired too")
    client = redis.Redis.from_url(URL)
    # As expiry leaves things: a directory outlives some files, a parent outlives a directory.
    client.delete(f"{namespace}:f:runs/r1:/d/gone.txt", f"{namespace}:d:runs/r1:/old")

    assert [e["path"] for e in run.ls("/d").entries or []] == ["/d/kept.txt"]
    assert [e["path"] for e in run.ls("/").entries or []] == ["/d/", "/memories/", "/skills/"]
    assert [m["path"] for m in run.glob("**/*.txt").matches or []] == ["/d/kept.txt"]


def test_a_restarted_redis_gets_the_scripts_again(files: SharedFiles) -> None:
    run = files.for_run("r1")
    run.write("/a.txt", "one")
    redis.Redis.from_url(URL).script_flush()

    assert run.edit("/a.txt", "one", "two").occurrences == 1
    assert run.write("/b.txt", "b").error is None
    assert run.delete("/a.txt").error is None


def test_asyncio_clients_close_with_their_loop(namespace: str) -> None:
    store = RedisStore.from_url(URL, namespace)
    store.save("/x.txt", b"x")

    def open_descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_descriptors()
    for _ in range(50):
        assert asyncio.run(store.aload(["/x.txt"]))[0] is not None

    assert open_descriptors() - before < 5
