"""Helpers for the conformance suite: common setups and backend-neutral views of results.

Every view drops what legitimately differs between backends (timestamps, the order of a listing
that deepagents leaves unspecified) and keeps everything an agent relies on.
"""

from __future__ import annotations

from collections.abc import Mapping

from deepagents.backends.protocol import (
    BackendProtocol,
    FileData,
    GlobResult,
    GrepResult,
    LsResult,
    ReadResult,
)
from deepagents.backends.utils import slice_read_response
from hypothesis import HealthCheck, settings

from shared.files.backend import FilesBackend

Window = tuple[str | None, int | None, int | None, int | None, int | None]
"""(content, total_lines, start_line, end_line, next_offset) of one read."""

Hit = tuple[str, int, str]
"""(path, line, text) of one grep match."""


def ours(backend: BackendProtocol) -> bool:
    """True for our `FilesBackend` on any store, False for deepagents' `StoreBackend` (the
    reference): marks the behaviours where we are deliberately stricter than the reference."""
    return isinstance(backend, FilesBackend)


def examples(kind: str) -> settings:
    """Hypothesis settings for one backend kind: fewer examples over the network."""
    return settings(
        max_examples=15 if kind in {"redis", "s3"} else 40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def write_files(backend: BackendProtocol, files: Mapping[str, str]) -> None:
    for path, content in files.items():
        result = backend.write(path, content)
        assert result.error is None, f"write {path}: {result.error}"


def upload(backend: BackendProtocol, files: Mapping[str, bytes]) -> None:
    responses = backend.upload_files(list(files.items()))
    assert [(r.path, r.error) for r in responses] == [(path, None) for path in files]


def download(backend: BackendProtocol, path: str) -> bytes:
    (response,) = backend.download_files([path])
    assert response.error is None, f"download {path}: {response.error}"
    assert isinstance(response.content, bytes)
    return response.content


def file_data(backend: BackendProtocol, path: str, offset: int = 0, limit: int = 2000) -> FileData:
    result = backend.read(path, offset=offset, limit=limit)
    assert result.error is None, f"read {path}: {result.error}"
    assert result.file_data is not None
    return result.file_data


def read_text(backend: BackendProtocol, path: str, offset: int = 0, limit: int = 2000) -> str:
    return file_data(backend, path, offset, limit)["content"]


def window(result: ReadResult) -> Window:
    content = result.file_data["content"] if result.file_data is not None else None
    return content, result.total_lines, result.start_line, result.end_line, result.next_offset


def deepagents_read(text: str, offset: int, limit: int) -> ReadResult:
    """What deepagents' own line slicing makes of a text file: the oracle for `read`."""
    return slice_read_response(FileData(content=text, encoding="utf-8"), offset, limit)


def hits(result: GrepResult) -> list[Hit]:
    assert result.error is None, result.error
    assert result.matches is not None
    return sorted((match["path"], match["line"], match["text"]) for match in result.matches)


def found(result: GlobResult) -> list[str]:
    assert result.error is None, result.error
    assert result.matches is not None
    return sorted(info["path"] for info in result.matches)


def entries(result: LsResult) -> list[tuple[str, bool, int]]:
    """(path, is_dir, size) of each entry, in the order the backend gave them."""
    assert result.error is None, result.error
    assert result.entries is not None
    return [(info["path"], bool(info.get("is_dir")), int(info.get("size", -1))) for info in result.entries]


def tree(backend: BackendProtocol, directory: str = "/") -> list[str]:
    """Every file below `directory`, found by walking `ls`: sorted absolute paths."""
    paths: list[str] = []
    for path, is_dir, _size in entries(backend.ls(directory)):
        paths += tree(backend, path) if is_dir else [path]
    return sorted(paths)
