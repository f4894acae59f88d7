"""The shared LangGraph store, on fakeredis (with Lua) and, where the semantics are meant to be
the same, on langgraph's `InMemoryStore`, the reference. `tests/integration/test_stores_on_redis.py`
runs this very suite again on the real Redis server."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from shared.settings import Settings
from shared.stores import SharedStore, StoreQueryError

_prefixes = itertools.count()


@pytest.fixture(params=["reference", "fakeredis"])
def store(request: pytest.FixtureRequest) -> Iterator[BaseStore]:
    if request.param == "reference":
        yield InMemoryStore()
        return
    server = fakeredis.FakeServer()
    yield SharedStore(
        fakeredis.FakeRedis(server=server),
        lambda: fakeredis.FakeAsyncRedis(server=server),
        f"tfstore{next(_prefixes)}:store",
    )


def shared_only(store: BaseStore) -> SharedStore:
    """Skip what InMemoryStore does differently by design (a dict, not a database)."""
    if not isinstance(store, SharedStore):
        pytest.skip("InMemoryStore behaves otherwise here: see shared.stores")
    return store


def _values(items: list[Any]) -> dict[tuple[tuple[str, ...], str], Any]:
    return {(item.namespace, item.key): item.value for item in items}


# What every store agrees on.


def test_put_then_get(store: BaseStore) -> None:
    store.put(("users", "u1"), "prefs", {"theme": "dark", "sizes": [1, 2], "nested": {"a": None}})
    item = store.get(("users", "u1"), "prefs")

    assert item is not None
    assert (item.namespace, item.key) == (("users", "u1"), "prefs")
    assert item.value == {"theme": "dark", "sizes": [1, 2], "nested": {"a": None}}
    assert item.created_at <= item.updated_at
    assert store.get(("users", "u1"), "other") is None
    assert store.get(("users", "u2"), "prefs") is None


def test_a_put_replaces_and_a_none_put_deletes(store: BaseStore) -> None:
    store.put(("n",), "k", {"v": 1})
    store.put(("n",), "k", {"v": 2})
    assert store.get(("n",), "k").value == {"v": 2}  # type: ignore[union-attr]

    store.delete(("n",), "k")
    assert store.get(("n",), "k") is None
    assert store.search(("n",)) == []
    store.delete(("n",), "never-there")  # deleting nothing is fine


def test_search_covers_the_prefix_and_everything_below_it_only(store: BaseStore) -> None:
    for namespace in [("a",), ("a", "b"), ("a", "b", "c"), ("ab",), ("a-c",), ("b", "a")]:
        store.put(namespace, "k", {"at": list(namespace)})

    assert set(_values(store.search(("a",)))) == {(("a",), "k"), (("a", "b"), "k"), (("a", "b", "c"), "k")}
    assert set(_values(store.search(("a", "b")))) == {(("a", "b"), "k"), (("a", "b", "c"), "k")}
    assert set(_values(store.search(("a", "x")))) == set()
    assert len(store.search((), limit=100)) == 6


def test_search_filters_on_values(store: BaseStore) -> None:
    store.put(("docs",), "1", {"kind": "note", "n": 1, "meta": {"lang": "en", "tags": ["x"]}})
    store.put(("docs",), "2", {"kind": "note", "n": 5, "meta": {"lang": "fr", "tags": ["x"]}})
    store.put(("docs",), "3", {"kind": "todo", "n": 9, "meta": {"lang": "en", "tags": ["y"]}})

    def keys(**filter: Any) -> set[str]:
        return {item.key for item in store.search(("docs",), filter=filter)}

    assert keys(kind="note") == {"1", "2"}
    assert keys(kind="note", meta={"lang": "en"}) == {"1"}
    assert keys(meta={"tags": ["x"]}) == {"1", "2"}
    assert keys(n={"$gt": 3}) == {"2", "3"}
    assert keys(n={"$gte": 1, "$lt": 9}) == {"1", "2"}
    assert keys(kind={"$ne": "note"}) == {"3"}
    assert keys(missing="x") == set()


def test_search_pages_with_limit_and_offset(store: BaseStore) -> None:
    for n in range(7):
        store.put(("page",), f"k{n}", {"even": n % 2 == 0})

    everything = [item.key for item in store.search(("page",), limit=100)]
    pages = [[item.key for item in store.search(("page",), limit=3, offset=o)] for o in (0, 3, 6)]
    assert sorted(everything) == [f"k{n}" for n in range(7)]
    assert [key for page in pages for key in page] == everything

    evens = [item.key for item in store.search(("page",), filter={"even": True}, limit=100)]
    paged = [
        item.key
        for o in range(4)
        for item in store.search(("page",), filter={"even": True}, limit=1, offset=o)
    ]
    assert sorted(evens) == ["k0", "k2", "k4", "k6"]
    assert paged == evens


def test_list_namespaces(store: BaseStore) -> None:
    for namespace in [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x", "b", "c"), ("a-z",)]:
        store.put(namespace, "k", {})

    assert store.list_namespaces() == sorted(
        [("a", "b", "c"), ("a", "b", "d"), ("a", "e"), ("x", "b", "c"), ("a-z",)]
    )
    assert store.list_namespaces(prefix=("a",)) == [("a", "b", "c"), ("a", "b", "d"), ("a", "e")]
    assert store.list_namespaces(prefix=("a", "*", "c")) == [("a", "b", "c")]
    assert store.list_namespaces(prefix=("*", "b")) == [("a", "b", "c"), ("a", "b", "d"), ("x", "b", "c")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("x", "b", "c")]
    assert store.list_namespaces(prefix=("a",), suffix=("*", "d")) == [("a", "b", "d")]
    suffix_first = (MatchCondition("suffix", ("c",)), MatchCondition("prefix", ("x",)))
    assert store.batch([ListNamespacesOp(match_conditions=suffix_first)]) == [[("x", "b", "c")]]
    assert store.list_namespaces(max_depth=2) == [("a", "b"), ("a", "e"), ("a-z",), ("x", "b")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "d"), ("a", "e")]


def test_in_one_batch_reads_see_the_state_before_its_puts_and_the_last_put_wins(store: BaseStore) -> None:
    store.put(("b",), "k", {"v": "before"})
    results = store.batch(
        [
            PutOp(("b",), "k", {"v": "first"}),
            GetOp(("b",), "k"),
            SearchOp(("b",)),
            PutOp(("b",), "k", {"v": "last"}),
            PutOp(("b",), "new", {"v": "new"}),
        ]
    )

    assert results[0] is None
    assert results[3] is None
    assert isinstance(results[1], Item)
    assert results[1].value == {"v": "before"}
    assert _values(results[2]) == {(("b",), "k"): {"v": "before"}}  # type: ignore[arg-type]
    assert store.get(("b",), "k").value == {"v": "last"}  # type: ignore[union-attr]
    assert store.get(("b",), "new") is not None


def test_namespaces_with_periods_are_refused_even_in_a_raw_batch(store: BaseStore) -> None:
    if isinstance(store, InMemoryStore):
        pytest.skip("InMemoryStore keys namespaces by tuple: it needs no such check")
    with pytest.raises(InvalidNamespaceError):
        store.batch([GetOp(("a.b",), "k")])
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {})


def test_the_async_api_is_the_same_store(store: BaseStore) -> None:
    async def scenario() -> tuple[Any, ...]:
        await store.aput(("async",), "k", {"v": 1})
        await store.aput(("async", "deeper"), "k", {"v": 2})
        item = await store.aget(("async",), "k")
        found = await store.asearch(("async",), filter={"v": 2})
        namespaces = await store.alist_namespaces(prefix=("async",))
        await store.adelete(("async",), "k")
        return item, found, namespaces, await store.aget(("async",), "k")

    item, found, namespaces, deleted = asyncio.run(scenario())
    assert item.value == {"v": 1}
    assert _values(found) == {(("async", "deeper"), "k"): {"v": 2}}
    assert namespaces == [("async",), ("async", "deeper")]
    assert deleted is None
    assert store.get(("async", "deeper"), "k").value == {"v": 2}  # type: ignore[union-attr]


def test_random_operations_agree_with_the_reference(store: BaseStore) -> None:
    if isinstance(store, InMemoryStore):
        pytest.skip("this compares a store with the reference")
    reference = InMemoryStore()
    rng = random.Random(7)
    namespaces = [("r",), ("r", "a"), ("r", "a", "x"), ("r", "b"), ("s",)]
    for step in range(300):
        namespace = rng.choice(namespaces)
        key = rng.choice("pqrs")
        choice = rng.random()
        if choice < 0.45:
            value = {"n": rng.randint(0, 3), "step": step}
            store.put(namespace, key, value)
            reference.put(namespace, key, value)
        elif choice < 0.6:
            store.delete(namespace, key)
            reference.delete(namespace, key)
        elif choice < 0.75:
            got, expected = store.get(namespace, key), reference.get(namespace, key)
            assert (got and got.value) == (expected and expected.value), step
        else:
            wanted = {"n": rng.randint(0, 3)} if rng.random() < 0.5 else None
            got_items = _values(store.search(namespace, filter=wanted, limit=1000))
            assert got_items == _values(reference.search(namespace, filter=wanted, limit=1000)), step
    # InMemoryStore lists a namespace whose items were all deleted; a database does not.
    live = {item.namespace for item in reference.search((), limit=1000)}
    assert store.list_namespaces() == sorted(live)


# Where a database differs from a dict in memory: as langgraph's SQLite and Postgres stores.


def test_search_returns_the_latest_updates_first(store: BaseStore) -> None:
    shared = shared_only(store)
    for key in ("a", "b", "c"):
        shared.put(("t",), key, {})
        time.sleep(0.003)
    shared.put(("t",), "a", {"touched": True})

    assert [item.key for item in shared.search(("t",))] == ["a", "c", "b"]


def test_an_update_keeps_created_at(store: BaseStore) -> None:
    shared = shared_only(store)
    shared.put(("t",), "k", {"v": 1})
    first = shared.get(("t",), "k")
    time.sleep(0.003)
    shared.put(("t",), "k", {"v": 2})
    second = shared.get(("t",), "k")

    assert first is not None
    assert second is not None
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_namespaces_whose_items_are_all_gone_are_not_listed(store: BaseStore) -> None:
    shared = shared_only(store)
    shared.put(("gone", "soon"), "k", {})
    shared.put(("kept",), "k", {})
    shared.delete(("gone", "soon"), "k")

    assert shared.list_namespaces() == [("kept",)]
    assert shared.search(("gone",)) == []


def test_items_expire_after_their_ttl_and_reads_restart_it(store: BaseStore) -> None:
    shared = shared_only(store)
    second = 1 / 60  # TTLs are in minutes
    for key in ("read", "unread", "peeked", "cleared"):
        shared.put(("ttl",), key, {}, ttl=second)
    shared.put(("ttl",), "forever", {})
    shared.put(("ttl",), "cleared", {"again": True})  # a put without a TTL keeps the item for good

    time.sleep(0.5)
    assert shared.get(("ttl",), "read") is not None  # expires at 1.5 s now
    assert shared.get(("ttl",), "peeked", refresh_ttl=False) is not None  # still at 1.0 s
    time.sleep(0.7)

    assert shared.get(("ttl",), "unread") is None
    assert shared.get(("ttl",), "peeked") is None
    assert {item.key for item in shared.search(("ttl",))} == {"read", "forever", "cleared"}
    assert shared.get(("ttl",), "cleared").value == {"again": True}  # type: ignore[union-attr]


def test_the_last_item_expiring_takes_its_namespace_out_of_the_listing(store: BaseStore) -> None:
    shared = shared_only(store)
    shared.put(("brief", "life"), "k", {}, ttl=0.1 / 60)
    assert shared.list_namespaces() == [("brief", "life")]
    time.sleep(0.2)
    assert shared.list_namespaces() == []


def test_a_search_with_a_query_is_refused_there_is_no_index(store: BaseStore) -> None:
    shared = shared_only(store)
    with pytest.raises(StoreQueryError, match="no vector index"):
        shared.search(("docs",), query="python")


def test_a_value_that_is_not_json_is_refused_and_nothing_of_its_batch_written(store: BaseStore) -> None:
    shared = shared_only(store)
    with pytest.raises(TypeError, match="'bad'"):
        shared.batch([PutOp(("j",), "good", {"v": 1}), PutOp(("j",), "bad", {"when": object()})])
    assert shared.search(("j",)) == []


def test_two_stores_on_one_prefix_are_one_store_and_other_prefixes_are_apart(store: BaseStore) -> None:
    shared = shared_only(store)
    twin = SharedStore(shared.client, fakeredis.FakeAsyncRedis, shared.prefix)
    other = SharedStore(shared.client, fakeredis.FakeAsyncRedis, shared.prefix + "-other")
    shared.put(("one",), "k", {"by": "shared"})

    assert twin.get(("one",), "k").value == {"by": "shared"}  # type: ignore[union-attr]
    assert other.get(("one",), "k") is None
    assert other.list_namespaces() == []


def test_a_restarted_redis_that_forgot_the_scripts_is_served(store: BaseStore) -> None:
    shared = shared_only(store)
    shared.put(("s",), "k", {"v": 1})
    shared.client.script_flush()
    shared.put(("s",), "k", {"v": 2})
    shared.client.script_flush()
    assert [item.value for item in shared.search(("s",))] == [{"v": 2}]


# Opening the deployment's store.


def test_the_deployments_store_is_under_its_queue_prefix() -> None:
    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:6379/3", queue_prefix="acme")  # type: ignore[call-arg]
    store = SharedStore.from_settings(settings)

    assert store.prefix == "acme:store"
    assert store.opened_by(settings)
    assert not store.opened_by(settings.model_copy(update={"queue_prefix": "other"}))
    assert not store.opened_by(settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/4"}))
    assert not SharedStore(store.client, fakeredis.FakeAsyncRedis, "acme:store").opened_by(settings)
    with pytest.raises(ValueError, match="TASKFORCE_REDIS_URL"):
        SharedStore.from_settings(Settings(_env_file=None, redis_url=None))  # type: ignore[call-arg]
