"""One behaviour suite, run on every backend.

`reference` is deepagents' own `StoreBackend` over an in-memory LangGraph store: what it does
is what deepagents means. The others are our `FilesBackend` over each `Store`. The Redis and S3
stores are imported inside their fixtures, so a broken store fails its own tests only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio
from deepagents.backends import StoreBackend
from deepagents.backends.protocol import BackendProtocol
from langgraph.store.memory import InMemoryStore

from shared.files.backend import FilesBackend
from shared.files.memory import MemoryStore
from tests.conftest import redis_for_tests, require_redis

REDIS_URL = redis_for_tests(12)

Factory = Callable[[pytest.FixtureRequest], Iterator[BackendProtocol]]


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def memory_backend(_request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    yield FilesBackend(MemoryStore(_unique("conformance-")))


def reference_backend(_request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    yield StoreBackend(store=InMemoryStore(), namespace=lambda _rt: ("fs",))


def redis_backend(request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    from shared.files.redis import RedisStore

    client: redis.Redis = request.getfixturevalue("real_redis")
    namespace = _unique("tfconf:")
    yield FilesBackend(
        RedisStore(
            client,
            lambda: redis.asyncio.Redis.from_url(REDIS_URL),
            namespace=namespace,
        )
    )
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.unlink(*keys)


def fakeredis_backend(_request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    import fakeredis

    from shared.files.redis import RedisStore

    server = fakeredis.FakeServer()
    yield FilesBackend(
        RedisStore(
            fakeredis.FakeRedis(server=server),
            lambda: fakeredis.FakeAsyncRedis(server=server),
            namespace=_unique("tfconf:"),
        )
    )


def local_backend(request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    from shared.files.local import LocalStore

    yield FilesBackend(LocalStore(request.getfixturevalue("tmp_path") / "files"))


def s3_backend(request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    from shared.files.s3 import S3Store

    client, bucket = request.getfixturevalue("s3_bucket")
    yield FilesBackend(S3Store(client, bucket, prefix=_unique("t-")))


BACKENDS: dict[str, Factory] = {
    "memory": memory_backend,
    "reference": reference_backend,
    "redis": redis_backend,
    "fakeredis": fakeredis_backend,
    "local": local_backend,
    "s3": s3_backend,
}


@pytest.fixture(scope="session")
def real_redis() -> redis.Redis:
    """The test Redis (tests/conftest.py), db 12."""
    require_redis(REDIS_URL)
    return redis.Redis.from_url(REDIS_URL)


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[tuple[object, str]]:
    """One moto S3 server and one bucket for the session; each test gets a prefix of its own."""
    from tests.moto_s3 import create_bucket, moto_server, s3_client

    with moto_server() as endpoint:
        client = s3_client(endpoint)
        bucket = _unique("tfconf-")[:40]
        create_bucket(client, bucket)
        yield client, bucket


@pytest.fixture(params=list(BACKENDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str, request: pytest.FixtureRequest) -> Iterator[BackendProtocol]:
    yield from BACKENDS[kind](request)


OURS = [kind for kind in BACKENDS if kind != "reference"]
"""For behaviours the reference does not have: scopes, atomic edits."""
KEYSPACE_STORES = ["memory", "redis", "fakeredis"]
"""Stores where a scope never nests in its parent."""
PREFIX_STORES = ["local", "s3"]
"""Stores where a scope is a key prefix (a directory) of its parent."""


def _ours(request: pytest.FixtureRequest) -> Iterator[FilesBackend]:
    for backend in BACKENDS[request.param](request):
        assert isinstance(backend, FilesBackend)
        yield backend


@pytest.fixture(params=OURS)
def our_backend(request: pytest.FixtureRequest) -> Iterator[FilesBackend]:
    yield from _ours(request)


@pytest.fixture(params=KEYSPACE_STORES)
def keyspace_backend(request: pytest.FixtureRequest) -> Iterator[FilesBackend]:
    yield from _ours(request)


@pytest.fixture(params=PREFIX_STORES)
def prefix_backend(request: pytest.FixtureRequest) -> Iterator[FilesBackend]:
    yield from _ours(request)
