"""Path rules: where we are deliberately stricter than the reference, which trusts the
middleware and stores any key it is handed."""

from __future__ import annotations

import pytest
from deepagents.backends.protocol import BackendProtocol

from tests.conformance.support import download, ours, read_text, tree, write_files

INVALID_PATHS = {
    "relative": "notes/a.txt",
    "dot-dot": "/notes/../a.txt",
    "nul-byte": "/notes/a\x00.txt",
    "newline": "/notes/new\nline.txt",
    "2000-byte-path": "/" + "/".join(["d" * 100] * 20),
    "300-byte-name": "/notes/" + "c" * 300,
}


def errors_for(backend: BackendProtocol, path: str) -> dict[str, str | None]:
    """The error every operation reports for `path`."""
    return {
        "read": backend.read(path).error,
        "write": backend.write(path, "x").error,
        "edit": backend.edit(path, "x", "y").error,
        "ls": backend.ls(path).error,
        "grep": backend.grep("x", path=path).error,
        "glob": backend.glob("*", path=path).error,
        "delete": backend.delete(path).error,
        "upload": backend.upload_files([(path, b"x")])[0].error,
        "download": backend.download_files([path])[0].error,
    }


@pytest.mark.parametrize("path", list(INVALID_PATHS.values()), ids=list(INVALID_PATHS))
def test_invalid_paths_are_refused_by_every_operation(backend: BackendProtocol, path: str) -> None:
    errors = errors_for(backend, path)

    if ours(backend):
        assert {op: "invalid_path" in (error or "") for op, error in errors.items()} == dict.fromkeys(
            errors, True
        )
        assert (errors["upload"], errors["download"]) == ("invalid_path", "invalid_path")
        assert tree(backend) == []
    else:
        assert errors["write"] is None, "StoreBackend stores whatever key it is given"


def test_paths_are_normalised(backend: BackendProtocol) -> None:
    result = backend.write("/a//b/./c.txt", "text")

    if ours(backend):
        assert result.path == "/a/b/c.txt"
        assert read_text(backend, "/a/b/c.txt") == "text"
        assert download(backend, "/a/./b//c.txt/") == b"text"
        assert tree(backend) == ["/a/b/c.txt"]
    else:
        assert result.path == "/a//b/./c.txt"
        assert "not found" in (backend.read("/a/b/c.txt").error or ""), "StoreBackend keeps the key verbatim"


def test_reading_a_directory(backend: BackendProtocol) -> None:
    write_files(backend, {"/dir/a.txt": "a", "/dir/sub/b.txt": "b"})

    read_error = backend.read("/dir").error or ""
    (downloaded,) = backend.download_files(["/dir"])

    assert downloaded.content is None
    if ours(backend):
        assert "is_directory" in read_error
        assert downloaded.error == "is_directory"
    else:
        assert "not found" in read_error
        assert downloaded.error == "file_not_found"
