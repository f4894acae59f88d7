"""`delete` (recursive by path, never by string prefix) and `upload_files`/`download_files`
(order kept, partial failures, any bytes)."""

from __future__ import annotations

import base64
import random

import pytest
from deepagents.backends.protocol import BackendProtocol

from tests.conformance.support import download, file_data, ours, tree, upload, window, write_files

NEIGHBOURS = {
    "/a/x.txt": "x",
    "/a/b/y.txt": "y",
    "/ab.txt": "ab",
    "/abc/z.txt": "z",
    "/a.txt": "file beside the directory",
}


# delete


def test_delete_a_file(backend: BackendProtocol) -> None:
    write_files(backend, NEIGHBOURS)

    result = backend.delete("/a/x.txt")

    assert (result.error, result.path) == (None, "/a/x.txt")
    assert "not found" in (backend.read("/a/x.txt").error or "")
    assert tree(backend) == ["/a.txt", "/a/b/y.txt", "/ab.txt", "/abc/z.txt"]


@pytest.mark.parametrize("path", ["/a", "/a/"])
def test_delete_a_directory_recursively(backend: BackendProtocol, path: str) -> None:
    write_files(backend, NEIGHBOURS)

    result = backend.delete(path)

    assert result.error is None
    assert tree(backend) == ["/a.txt", "/ab.txt", "/abc/z.txt"]


def test_delete_of_a_file_keeps_its_namesake_directory(backend: BackendProtocol) -> None:
    write_files(backend, {"/a/x.txt": "x", "/a.txt": "a"})

    assert backend.delete("/a.txt").error is None
    assert tree(backend) == ["/a/x.txt"]


def test_delete_removes_emptied_directories_from_ls(backend: BackendProtocol) -> None:
    write_files(backend, {"/keep.txt": "k", "/gone/deep/er/f.txt": "f"})

    assert backend.delete("/gone/deep/er/f.txt").error is None

    assert [info["path"] for info in backend.ls("/").entries or []] == ["/keep.txt"]
    assert backend.ls("/gone").entries == []


@pytest.mark.parametrize("path", ["/nope.txt", "/a/nope", "/ab"], ids=["missing", "missing-inside", "prefix"])
def test_delete_of_a_missing_path(backend: BackendProtocol, path: str) -> None:
    write_files(backend, NEIGHBOURS)

    result = backend.delete(path)

    assert result.error is not None
    assert "not found" in result.error
    assert result.path is None
    assert tree(backend) == sorted(NEIGHBOURS)


def test_delete_then_write_again(backend: BackendProtocol) -> None:
    write_files(backend, {"/d/f.txt": "first"})
    assert backend.delete("/d").error is None

    write_files(backend, {"/d/f.txt": "second"})

    assert download(backend, "/d/f.txt") == b"second"


def test_delete_of_the_root(backend: BackendProtocol) -> None:
    write_files(backend, NEIGHBOURS)

    result = backend.delete("/")

    if ours(backend):
        assert result.error is not None
        assert tree(backend) == sorted(NEIGHBOURS)
    else:
        assert result.error is None, "StoreBackend deletes everything"
        assert tree(backend) == []


# upload and download


def test_transfers_keep_their_order(backend: BackendProtocol) -> None:
    uploaded = backend.upload_files([("/b.txt", b"B"), ("/a.txt", b"A"), ("/c/d.txt", b"D")])

    downloaded = backend.download_files(["/c/d.txt", "/missing.txt", "/a.txt", "/b.txt"])

    assert [(r.path, r.error) for r in uploaded] == [("/b.txt", None), ("/a.txt", None), ("/c/d.txt", None)]
    assert [(r.path, r.content, r.error) for r in downloaded] == [
        ("/c/d.txt", b"D", None),
        ("/missing.txt", None, "file_not_found"),
        ("/a.txt", b"A", None),
        ("/b.txt", b"B", None),
    ]


def test_upload_with_a_bad_path_fails_alone(backend: BackendProtocol) -> None:
    files = [("/ok/1.txt", b"1"), ("no/slash.txt", b"2"), ("/ok/../3.txt", b"3"), ("/ok/4.txt", b"4")]

    errors = [r.error for r in backend.upload_files(files)]

    if ours(backend):
        assert errors == [None, "invalid_path", "invalid_path", None]
        assert tree(backend) == ["/ok/1.txt", "/ok/4.txt"]
    else:
        assert errors == [None, None, None, None], "StoreBackend stores whatever key it is given"
    assert [download(backend, path) for path in ("/ok/1.txt", "/ok/4.txt")] == [b"1", b"4"]


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)), random.Random(20240611).randbytes(65_536), b"", b"\x00", b"\xff", "ünï\r\n".encode()],
    ids=["all-byte-values", "random", "empty", "nul", "invalid-utf8", "utf8-crlf"],
)
def test_bytes_round_trip(backend: BackendProtocol, content: bytes) -> None:
    upload(backend, {"/data/blob.bin": content})

    assert download(backend, "/data/blob.bin") == content


def test_read_of_a_binary_file_is_base64(backend: BackendProtocol) -> None:
    content = bytes(range(256))
    upload(backend, {"/blob.bin": content, "/pic.png": b"\x89PNG\r\n\x1a\n" + content})

    blob = backend.read("/blob.bin")
    picture = file_data(backend, "/pic.png")

    assert blob.file_data is not None
    assert blob.file_data["encoding"] == "base64"
    assert base64.standard_b64decode(blob.file_data["content"]) == content
    assert window(blob)[1:] == (1, 1, 1, None)
    assert picture["encoding"] == "base64"
    assert base64.standard_b64decode(picture["content"]) == b"\x89PNG\r\n\x1a\n" + content


def test_read_of_uploaded_text_is_text(backend: BackendProtocol) -> None:
    upload(backend, {"/t.txt": "zwei\nZüge\n".encode()})

    data = file_data(backend, "/t.txt")

    assert (data["encoding"], data["content"]) == ("utf-8", "zwei\nZüge\n")


def test_upload_replaces_a_written_file(backend: BackendProtocol) -> None:
    write_files(backend, {"/f.txt": "text"})

    upload(backend, {"/f.txt": b"\xffbinary now"})

    assert download(backend, "/f.txt") == b"\xffbinary now"
    assert file_data(backend, "/f.txt")["encoding"] == "base64"
