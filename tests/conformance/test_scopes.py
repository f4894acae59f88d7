"""Scopes: sibling scopes never share a file on any store. Redis and memory keep every scope
apart, nesting included; on S3 and `file://` a scope is a prefix of its parent, which sees it
as a directory (`SharedFiles` only uses siblings). Not for the reference, which has no scopes."""

from __future__ import annotations

from shared.files.backend import FilesBackend
from tests.conformance.support import found, hits, read_text, tree, write_files


def scoped(backend: FilesBackend, *names: str) -> FilesBackend:
    """`backend`'s store narrowed by each name in turn."""
    store = backend.store
    for name in names:
        store = store.scope(name)
    return FilesBackend(store)


def assert_blind(viewer: FilesBackend, files: dict[str, str]) -> None:
    """`viewer` can reach none of `files` (written elsewhere) by any operation."""
    for path in files:
        assert "not found" in (viewer.read(path).error or ""), path
        assert viewer.download_files([path])[0].error == "file_not_found", path
    assert [p for p in tree(viewer) if p in files] == []
    assert [p for p in found(viewer.glob("**")) if p in files] == []
    assert [hit for hit in hits(viewer.grep("secret")) if hit[0] in files] == []


def test_sibling_scopes_do_not_see_each_other(our_backend: FilesBackend) -> None:
    a, b = scoped(our_backend, "a"), scoped(our_backend, "b")
    only_in_a = {"/only-a/secret.txt": "secret of a"}
    write_files(a, {"/same.txt": "from a", **only_in_a})
    write_files(b, {"/same.txt": "from b"})

    assert_blind(b, only_in_a)
    assert (read_text(a, "/same.txt"), read_text(b, "/same.txt")) == ("from a", "from b")
    assert tree(b) == ["/same.txt"]


def test_a_parent_sees_its_scopes_as_directories_on_prefix_stores(prefix_backend: FilesBackend) -> None:
    write_files(scoped(prefix_backend, "runs", "r1"), {"/secret.txt": "secret of r1"})

    assert tree(prefix_backend) == ["/runs/r1/secret.txt"]


def test_a_scope_and_the_store_it_came_from_are_disjoint(keyspace_backend: FilesBackend) -> None:
    child = scoped(keyspace_backend, "runs")
    in_parent = {"/runs/secret.txt": "secret in parent", "/secret.txt": "secret at the top"}
    write_files(keyspace_backend, in_parent)
    in_child = {"/secret.txt": "secret in child"}
    write_files(child, in_child)

    assert tree(child) == ["/secret.txt"]
    assert read_text(child, "/secret.txt") == "secret in child"
    assert tree(keyspace_backend) == sorted(in_parent)
    assert read_text(keyspace_backend, "/secret.txt") == "secret at the top"
    assert read_text(keyspace_backend, "/runs/secret.txt") == "secret in parent", (
        "the child's write reached it"
    )


def test_nested_scopes(keyspace_backend: FilesBackend) -> None:
    parent = scoped(keyspace_backend, "runs")
    run_1, run_2 = scoped(keyspace_backend, "runs", "r1"), scoped(keyspace_backend, "runs/r2")
    write_files(parent, {"/r1/secret.txt": "secret in parent"})
    write_files(run_1, {"/secret.txt": "secret of r1"})
    write_files(run_2, {"/secret.txt": "secret of r2"})

    assert read_text(run_1, "/secret.txt") == "secret of r1"
    assert read_text(run_2, "/secret.txt") == "secret of r2"
    assert tree(parent) == ["/r1/secret.txt"]
    assert read_text(parent, "/r1/secret.txt") == "secret in parent"
    assert read_text(scoped(keyspace_backend, "runs/r1"), "/secret.txt") == "secret of r1", (
        "a nested scope is the scope of its '/'-joined name"
    )
