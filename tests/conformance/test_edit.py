"""`edit`: exact-match replacement with deepagents' rules and messages."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from deepagents.backends.protocol import BackendProtocol
from deepagents.backends.utils import EMPTY_OLD_STRING_ERROR

from tests.conformance.support import download, file_data, tree, upload, write_files


def refused(backend: BackendProtocol, path: str, old: str, new: str, *, replace_all: bool = False) -> str:
    """The error of an edit that must fail, after checking it left the file as it was."""
    before = backend.download_files([path])[0]
    result = backend.edit(path, old, new, replace_all=replace_all)
    assert result.error is not None
    assert (result.path, result.occurrences) == (None, None)
    assert backend.download_files([path])[0] == before
    return result.error


def test_edit_replaces_an_exact_match(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "status: draft\n  owner: me\n"})

    result = backend.edit("/a.txt", "  owner: me\n", "  owner: you\n")

    assert (result.error, result.path, result.occurrences) == (None, "/a.txt", 1)
    assert download(backend, "/a.txt") == b"status: draft\n  owner: you\n"


def test_edit_replace_all_counts_occurrences(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "x-x-x\nx"})

    result = backend.edit("/a.txt", "x", "yy", replace_all=True)

    assert (result.error, result.occurrences) == (None, 4)
    assert download(backend, "/a.txt") == b"yy-yy-yy\nyy"


def test_edit_of_a_string_that_is_not_unique(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "x-x-x"})

    error = refused(backend, "/a.txt", "x", "y")

    assert "appears 3 times" in error
    assert "replace_all" in error


def test_edit_of_a_string_that_is_not_there(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "hello"})

    assert refused(backend, "/a.txt", "goodbye", "x") == "Error: String not found in file: 'goodbye'"


def test_edit_hints_at_a_missing_final_newline(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "alpha\nomega"})

    assert "does not end with a newline" in refused(backend, "/a.txt", "omega\n", "OMEGA\n")


def test_edit_of_an_empty_old_string(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "hello"})

    assert refused(backend, "/a.txt", "", "x") == EMPTY_OLD_STRING_ERROR


def test_edit_of_a_missing_file(backend: BackendProtocol) -> None:
    result = backend.edit("/nope.txt", "a", "b")

    assert result.error is not None
    assert "not found" in result.error
    assert tree(backend) == []


def test_edit_of_a_binary_file(backend: BackendProtocol) -> None:
    upload(backend, {"/blob.bin": b"old\xff\xfe"})

    assert "binary" in refused(backend, "/blob.bin", "old", "new")
    assert download(backend, "/blob.bin") == b"old\xff\xfe"


def test_edit_keeps_line_ends_it_does_not_touch(backend: BackendProtocol) -> None:
    write_files(backend, {"/dos.txt": "one\r\ntwo\r\n"})

    assert backend.edit("/dos.txt", "two", "TWO").occurrences == 1
    assert download(backend, "/dos.txt") == b"one\r\nTWO\r\n"


def test_edit_keeps_created_at_and_updates_modified_at(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "before"})
    written = file_data(backend, "/a.txt")
    time.sleep(0.01)

    assert backend.edit("/a.txt", "before", "after").error is None
    edited = file_data(backend, "/a.txt")

    assert edited["content"] == "after"
    assert edited["created_at"] == written["created_at"]
    assert datetime.fromisoformat(edited["modified_at"]) > datetime.fromisoformat(written["modified_at"])


@pytest.mark.parametrize("replace_all", [False, True])
def test_edit_to_the_same_text(backend: BackendProtocol, replace_all: bool) -> None:
    write_files(backend, {"/a.txt": "same"})

    result = backend.edit("/a.txt", "same", "same", replace_all=replace_all)

    assert (result.error, result.occurrences) == (None, 1)
    assert download(backend, "/a.txt") == b"same"
