"""The S3 store against a real moto server over HTTP, with a real boto3 client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from shared.files.paths import InvalidPathError
from shared.files.s3 import S3ConfigError, S3Store, parse_s3_url
from shared.files.store import ABSENT, Stored
from tests.moto_s3 import create_bucket, moto_server, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def client(endpoint: str) -> S3Client:
    return s3_client(endpoint)


@pytest.fixture
def bucket(client: S3Client) -> str:
    name = f"test-{uuid.uuid4().hex[:20]}"
    create_bucket(client, name)
    return name


@pytest.fixture
def store(client: S3Client, bucket: str) -> S3Store:
    return S3Store(client, bucket, "tf")


def keys(client: S3Client, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def load_one(store: S3Store, path: str) -> Stored:
    [stored] = store.load([path])
    assert stored is not None, path
    return stored


# Round trips


def test_text_round_trip(store: S3Store) -> None:
    version = store.save("/notes/a.md", "héllo\nworld\n".encode())

    stored = load_one(store, "/notes/a.md")
    assert stored.content == "héllo\nworld\n".encode()
    assert stored.binary is False
    assert stored.version == version
    assert version
    assert not version.startswith('"')
    assert stored.created_at == stored.modified_at
    assert datetime.fromisoformat(stored.created_at).tzinfo is not None


def test_binary_round_trip_is_byte_exact(store: S3Store) -> None:
    content = bytes(range(256)) * 4
    store.save("/blob.bin", content)

    stored = load_one(store, "/blob.bin")
    assert stored.content == content
    assert stored.binary is True


def test_empty_file(store: S3Store) -> None:
    assert store.save("/empty.txt", b"") is not None

    assert load_one(store, "/empty.txt").content == b""
    [entry] = store.walk("/")
    assert (entry.path, entry.size) == ("/empty.txt", 0)


def test_missing_files_load_as_none_in_order(store: S3Store) -> None:
    store.save("/a.txt", b"a")
    store.save("/b.txt", b"b")

    loaded = store.load(["/b.txt", "/missing.txt", "/a.txt", "/dir/missing"])

    assert [stored.content if stored else None for stored in loaded] == [b"b", None, b"a", None]
    assert store.load([]) == []


def test_unicode_and_spaces_in_paths(client: S3Client, bucket: str, store: S3Store) -> None:
    path = "/dir with space/ünï 文件 +&?#%.txt"
    store.save(path, b"x")

    assert load_one(store, path).content == b"x"
    assert keys(client, bucket) == ["tf/dir with space/ünï 文件 +&?#%.txt"]
    assert store.listing("/").directories == ["/dir with space"]
    assert [entry.path for entry in store.listing("/dir with space").files] == [path]


def test_paths_are_normalised_and_checked(store: S3Store) -> None:
    store.save("/a//b/./c.txt", b"x")

    assert load_one(store, "/a/b/c.txt").content == b"x"
    with pytest.raises(InvalidPathError, match="absolute"):
        store.save("relative.txt", b"x")
    with pytest.raises(InvalidPathError, match=r"'\.\.'"):
        store.load(["/a/../etc/passwd"])
    with pytest.raises(InvalidPathError, match="root directory"):
        store.save("/", b"x")


def test_async_twins(store: S3Store) -> None:
    async def scenario() -> list[Stored | None]:
        await store.asave("/async.txt", b"a")
        assert [entry.path for entry in await store.awalk("/")] == ["/async.txt"]
        assert (await store.alisting("/")).files[0].path == "/async.txt"
        loaded = await store.aload(["/async.txt"])
        assert await store.aremove(["/async.txt"]) == 1
        return loaded

    [stored] = asyncio.run(scenario())
    assert stored is not None
    assert stored.content == b"a"


# Metadata and versions


def test_overwrite_keeps_created_at_and_moves_modified_at_and_version(store: S3Store) -> None:
    first = store.save("/f.txt", b"one")
    before = load_one(store, "/f.txt")

    second = store.save("/f.txt", b"\xfftwo")
    after = load_one(store, "/f.txt")

    assert second is not None
    assert second != first
    assert after.version == second
    assert after.content == b"\xfftwo"
    assert after.binary is True
    assert after.created_at == before.created_at
    assert after.modified_at > before.modified_at


def test_an_explicit_created_at_is_kept(store: S3Store) -> None:
    store.save("/f.txt", b"x", created_at="2020-01-01T00:00:00+00:00")

    stored = load_one(store, "/f.txt")
    assert stored.created_at == "2020-01-01T00:00:00+00:00"
    assert stored.modified_at != stored.created_at


def test_expect_absent(store: S3Store) -> None:
    created = store.save("/new.txt", b"first", expect=ABSENT)

    assert created is not None
    assert store.save("/new.txt", b"second", expect=ABSENT) is None
    stored = load_one(store, "/new.txt")
    assert (stored.content, stored.version) == (b"first", created)


def test_expect_version_detects_a_concurrent_write(store: S3Store) -> None:
    old = store.save("/f.txt", b"v1")
    created_at = load_one(store, "/f.txt").created_at
    assert old is not None
    current = store.save("/f.txt", b"v2 by someone else")  # the concurrent writer

    assert store.save("/f.txt", b"my edit of v1", expect=old) is None
    assert load_one(store, "/f.txt").content == b"v2 by someone else"

    assert current is not None
    newest = store.save("/f.txt", b"my edit of v2", expect=current)
    stored = load_one(store, "/f.txt")
    assert newest is not None
    assert newest not in (old, current)
    assert (stored.content, stored.version, stored.created_at) == (b"my edit of v2", newest, created_at)


def test_expect_version_with_an_explicit_created_at(store: S3Store) -> None:
    old = store.save("/f.txt", b"v1")
    assert old is not None
    store.save("/f.txt", b"v2")

    assert store.save("/f.txt", b"x", expect=old, created_at="2020-01-01T00:00:00+00:00") is None
    assert load_one(store, "/f.txt").content == b"v2"


def test_expect_version_of_a_file_that_is_gone(store: S3Store) -> None:
    old = store.save("/f.txt", b"v1")
    assert old is not None
    store.remove(["/f.txt"])

    assert store.save("/f.txt", b"edit", expect=old) is None
    assert store.save("/f.txt", b"edit", expect=old, created_at="2020-01-01T00:00:00Z") is None
    assert store.load(["/f.txt"]) == [None]


def test_objects_written_by_other_tools_load_with_fallbacks(
    client: S3Client, bucket: str, store: S3Store
) -> None:
    client.put_object(Bucket=bucket, Key="tf/plain.txt", Body=b"text")
    client.put_object(Bucket=bucket, Key="tf/image.png", Body=b"\x89PNG\r\n\x1a\n\xff")

    text, image = store.load(["/plain.txt", "/image.png"])

    assert text is not None
    assert image is not None
    assert (text.binary, image.binary) == (False, True)
    assert text.created_at == text.modified_at
    assert datetime.fromisoformat(text.created_at).tzinfo is not None


# Listing, walking, removing


@pytest.fixture
def tree(store: S3Store) -> S3Store:
    for path in [
        "/top.txt",
        "/dir/b.txt",
        "/dir/a.txt",
        "/dir/sub/c.txt",
        "/dir/sub/deep/d.txt",
        "/dir/other/e.txt",
        "/dirx/f.txt",
    ]:
        store.save(path, path.encode(), expect=ABSENT)
    return store


def test_listing_shows_direct_children_only(tree: S3Store) -> None:
    root = tree.listing("/")
    assert [entry.path for entry in root.files] == ["/top.txt"]
    assert root.directories == ["/dir", "/dirx"]

    inside = tree.listing("/dir")
    assert [(entry.path, entry.size) for entry in inside.files] == [("/dir/a.txt", 10), ("/dir/b.txt", 10)]
    assert inside.directories == ["/dir/other", "/dir/sub"]
    for entry in inside.files:
        assert datetime.fromisoformat(entry.modified_at).utcoffset() is not None

    assert tree.listing("/dir/sub/").directories == ["/dir/sub/deep"]
    assert tree.listing("/nowhere").files == []
    assert tree.listing("/top.txt").files == []


def test_walk_finds_every_file_below(tree: S3Store) -> None:
    assert [entry.path for entry in tree.walk("/dir")] == [
        "/dir/a.txt",
        "/dir/b.txt",
        "/dir/other/e.txt",
        "/dir/sub/c.txt",
        "/dir/sub/deep/d.txt",
    ]
    assert len(tree.walk("/")) == 7
    assert tree.walk("/nowhere") == []


def test_keys_no_path_maps_to_are_skipped(client: S3Client, bucket: str, store: S3Store) -> None:
    store.save("/dir/real.txt", b"x")
    client.put_object(Bucket=bucket, Key="tf/dir/", Body=b"")  # a console's folder marker
    client.put_object(Bucket=bucket, Key="tf/dir//double.txt", Body=b"")
    client.put_object(Bucket=bucket, Key="tf/dir/./dot.txt", Body=b"")
    client.put_object(Bucket=bucket, Key="tfx/outside.txt", Body=b"")

    assert [entry.path for entry in store.walk("/")] == ["/dir/real.txt"]
    listing = store.listing("/dir")
    assert [entry.path for entry in listing.files] == ["/dir/real.txt"]
    assert listing.directories == []
    assert store.listing("/").directories == ["/dir"]


def test_remove_counts_what_existed(tree: S3Store) -> None:
    removed = tree.remove(["/dir/a.txt", "/dir/sub/c.txt", "/missing.txt", "/dir/a.txt"])

    assert removed == 2
    assert tree.load(["/dir/a.txt", "/dir/sub/c.txt"]) == [None, None]
    assert [entry.path for entry in tree.listing("/dir").files] == ["/dir/b.txt"]
    assert "/dir/sub/c.txt" not in [entry.path for entry in tree.walk("/")]
    assert tree.remove(["/dir/a.txt"]) == 0
    assert tree.remove([]) == 0


def test_directories_vanish_with_their_last_file(tree: S3Store) -> None:
    tree.remove(["/dir/sub/deep/d.txt"])

    assert tree.listing("/dir/sub").directories == []


def test_more_than_a_page_of_objects(client: S3Client, bucket: str, store: S3Store) -> None:
    paths = [f"/many/{n:04d}.txt" for n in range(1100)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        versions = list(pool.map(lambda path: store.save(path, b"x", expect=ABSENT), paths))
    assert all(versions)
    store.save("/many/sub/deeper.txt", b"x")

    assert [entry.path for entry in store.walk("/many")] == [*paths, "/many/sub/deeper.txt"]
    listing = store.listing("/many")
    assert [entry.path for entry in listing.files] == paths
    assert listing.directories == ["/many/sub"]

    # Many paths spread over more than a page: existence is partly listed, partly HEADed.
    scattered = paths[::16]
    assert store.remove([*scattered, "/many/0000.txt.never", "/many/9999.txt"]) == len(scattered)
    remaining = [path for path in paths if path not in scattered]
    assert store.remove([*remaining, "/many/never.txt"]) == len(remaining)
    assert keys(client, bucket) == ["tf/many/sub/deeper.txt"]


# Scopes and key layout


def test_key_layout(client: S3Client, bucket: str) -> None:
    root = S3Store(client, bucket, "/tf/")
    root.save("/a/b.txt", b"x")
    root.scope("memories").save("/a/b.txt", b"x")
    root.scope("runs/abc").scope("x").save("/a/b.txt", b"x")
    S3Store(client, bucket).save("/top.txt", b"x")
    S3Store(client, bucket).scope("s").save("/top.txt", b"x")

    assert sorted(keys(client, bucket)) == [
        "s/top.txt",
        "tf/a/b.txt",
        "tf/memories/a/b.txt",
        "tf/runs/abc/x/a/b.txt",
        "top.txt",
    ]


def test_scopes_are_isolated(store: S3Store) -> None:
    store.scope("a").save("/secret.txt", b"a's")
    other = store.scope("b")

    assert other.load(["/secret.txt"]) == [None]
    assert other.walk("/") == []
    assert other.listing("/").files == []
    assert other.remove(["/secret.txt"]) == 0
    assert load_one(store.scope("a"), "/secret.txt").content == b"a's"
    assert [entry.path for entry in store.walk("/")] == ["/a/secret.txt"]


def test_scope_keeps_client_bucket_and_ttl(store: S3Store) -> None:
    scoped = store.scope("runs/abc", ttl_s=3600)

    assert (scoped.client, scoped.bucket, scoped.prefix, scoped.ttl_s) == (
        store.client,
        store.bucket,
        "tf/runs/abc",
        3600,
    )
    assert store.ttl_s is None
    assert scoped.scope("x").prefix == "tf/runs/abc/x"


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a b", "..", "a/./b", "ü", "a\\b", "a?"])
def test_invalid_scope_names(store: S3Store, name: str) -> None:
    with pytest.raises(ValueError, match="invalid scope name"):
        store.scope(name)


@pytest.mark.parametrize("name", ["memories", "runs/abc-123", "runs/run-1.2_x"])
def test_valid_scope_names(store: S3Store, name: str) -> None:
    assert store.scope(name).prefix == f"tf/{name}"


# URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://my-bucket/taskforce", ("my-bucket", "taskforce")),
        ("S3://my.bucket/a/b/", ("my.bucket", "a/b")),
        ("s3://bucket//a//b", ("bucket", "a/b")),
    ],
)
def test_parse_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("bucket/prefix", "must start with 's3://'"),
        ("https://bucket/prefix", "must start with 's3://'"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://key:secret@bucket", "credentials or a port"),
        ("s3://bucket:9000/prefix", "credentials or a port"),
        ("s3://bucket/prefix?region=x", "query or a fragment"),
        ("s3://b/prefix", "invalid bucket name"),
        ("s3://bad bucket/prefix", "invalid bucket name"),
    ],
)
def test_bad_s3_urls(url: str, message: str) -> None:
    with pytest.raises(S3ConfigError, match=message):
        S3Store.from_url(url)


def test_from_url_configures_itself_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, client: S3Client, bucket: str
) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    store = S3Store.from_url(f"s3://{bucket}/team/files")
    store.save("/x.txt", b"x")

    assert (store.bucket, store.prefix) == (bucket, "team/files")
    assert keys(client, bucket) == ["team/files/x.txt"]


def test_a_bucket_is_required(client: S3Client) -> None:
    with pytest.raises(S3ConfigError, match="bucket"):
        S3Store(client, "")
