"""`read` windows exactly as deepagents slices them, and `write` creating and overwriting."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from deepagents.backends.protocol import BackendProtocol

from tests.conformance.support import (
    Window,
    deepagents_read,
    download,
    file_data,
    read_text,
    tree,
    window,
    write_files,
)

TEN_LINES = "".join(f"line {n}\n" for n in range(1, 11))


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 2000, (TEN_LINES, 10, 1, 10, None)),
        (3, 2, ("line 4\nline 5\n", 10, 4, 5, 5)),
        (8, 5, ("line 9\nline 10\n", 10, 9, 10, None)),
        (9, 1, ("line 10\n", 10, 10, 10, None)),
        (0, 10, (TEN_LINES, 10, 1, 10, None)),
        (-5, 2, ("line 1\nline 2\n", 10, 1, 2, 2)),
    ],
    ids=["whole", "middle", "past-the-end-limit", "last-line", "exact-fit", "negative-offset"],
)
def test_read_windows(backend: BackendProtocol, offset: int, limit: int, expected: Window) -> None:
    write_files(backend, {"/log.txt": TEN_LINES})

    result = backend.read("/log.txt", offset=offset, limit=limit)

    assert result.error is None
    assert window(result) == expected
    assert window(result) == window(deepagents_read(TEN_LINES, offset, limit))
    assert result.no_lines_requested is False


@pytest.mark.parametrize("offset", [10, 11, 500])
def test_read_past_the_end_is_an_error(backend: BackendProtocol, offset: int) -> None:
    write_files(backend, {"/log.txt": TEN_LINES})

    result = backend.read("/log.txt", offset=offset)

    assert result.error == f"Line offset {offset} exceeds file length (10 lines)"
    assert result.file_data is None


@pytest.mark.parametrize("limit", [0, -3])
def test_read_of_no_lines(backend: BackendProtocol, limit: int) -> None:
    write_files(backend, {"/log.txt": TEN_LINES})

    result = backend.read("/log.txt", offset=2, limit=limit)

    assert result.error is None
    assert result.no_lines_requested is True
    assert window(result) == ("", None, None, None, None)


def test_read_a_missing_file(backend: BackendProtocol) -> None:
    write_files(backend, {"/present.txt": "here"})

    result = backend.read("/absent.txt")

    assert result.error is not None
    assert "not found" in result.error
    assert "/absent.txt" in result.error
    assert result.file_data is None


@pytest.mark.parametrize("content", ["", "  \n\t\n "], ids=["empty", "blank"])
def test_read_an_empty_file(backend: BackendProtocol, content: str) -> None:
    write_files(backend, {"/empty.txt": content})

    result = backend.read("/empty.txt")

    assert result.error is None
    assert window(result) == (content, None, None, None, None)
    assert result.no_lines_requested is False


@pytest.mark.parametrize(
    ("content", "offset", "limit", "expected"),
    [
        ("one\r\ntwo\r\nthree", 0, 2000, ("one\ntwo\nthree", 3, 1, 3, None)),
        ("one\r\ntwo\r\nthree", 1, 1, ("two\n", 3, 2, 2, 2)),
        ("one\rtwo\rthree\r", 0, 2000, ("one\ntwo\nthree\n", 3, 1, 3, None)),
        ("mixed\r\nends\rhere\n", 1, 5, ("ends\nhere\n", 3, 2, 3, None)),
    ],
    ids=["crlf", "crlf-window", "cr", "mixed"],
)
def test_read_normalises_line_ends(
    backend: BackendProtocol, content: str, offset: int, limit: int, expected: Window
) -> None:
    write_files(backend, {"/dos.txt": content})

    assert window(backend.read("/dos.txt", offset=offset, limit=limit)) == expected
    assert download(backend, "/dos.txt") == content.encode(), "the stored bytes keep their line ends"


def test_read_a_long_file(backend: BackendProtocol) -> None:
    text = "".join(f"row {n}\n" for n in range(20_000))
    write_files(backend, {"/big.txt": text})

    result = backend.read("/big.txt", offset=19_998, limit=100)

    assert window(result) == ("row 19998\nrow 19999\n", 20_000, 19_999, 20_000, None)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/pic.png", (TEN_LINES, None, None, None, None)),
        ("/clip.mkv", (TEN_LINES, None, None, None, None)),
        ("/notes.md", ("line 4\nline 5\n", 10, 4, 5, 5)),
    ],
    ids=["image-whole", "video-whole", "text-windowed"],
)
def test_read_windows_only_text_files(backend: BackendProtocol, path: str, expected: Window) -> None:
    """Which files are read whole is deepagents' own classification: a change there shows here,
    on the reference and on ours alike."""
    write_files(backend, {path: TEN_LINES})

    assert window(backend.read(path, offset=3, limit=2)) == expected


def test_write_creates_a_file(backend: BackendProtocol) -> None:
    result = backend.write("/notes/a.md", "first\nsecond\n")

    assert (result.error, result.path) == (None, "/notes/a.md")
    assert read_text(backend, "/notes/a.md") == "first\nsecond\n"
    assert tree(backend) == ["/notes/a.md"]


def test_write_overwrites(backend: BackendProtocol) -> None:
    write_files(backend, {"/a.txt": "old content\nwith two lines\n"})

    result = backend.write("/a.txt", "new")

    assert (result.error, result.path) == (None, "/a.txt")
    assert read_text(backend, "/a.txt") == "new"
    assert download(backend, "/a.txt") == b"new"
    assert tree(backend) == ["/a.txt"]


def test_write_keeps_unicode(backend: BackendProtocol) -> None:
    text = "héllo wörld ✓ 🎉\n第二行\n"
    write_files(backend, {"/u.txt": text})

    assert read_text(backend, "/u.txt") == text
    assert download(backend, "/u.txt") == text.encode("utf-8")
    assert file_data(backend, "/u.txt")["encoding"] == "utf-8"


def test_overwrite_keeps_created_at_and_updates_modified_at(backend: BackendProtocol) -> None:
    write_files(backend, {"/t.txt": "one"})
    before = file_data(backend, "/t.txt")
    time.sleep(0.01)

    write_files(backend, {"/t.txt": "two"})
    after = file_data(backend, "/t.txt")

    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["modified_at"]) > datetime.fromisoformat(before["modified_at"])
    assert datetime.fromisoformat(after["created_at"]) <= datetime.fromisoformat(after["modified_at"])
