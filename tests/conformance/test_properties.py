"""Round trips over generated content and paths, compared with deepagents' own semantics."""

from __future__ import annotations

import itertools

from deepagents.backends.protocol import BackendProtocol
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.conformance.support import (
    deepagents_read,
    download,
    examples,
    file_data,
    found,
    tree,
    upload,
    window,
    write_files,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8"))
"""Any text UTF-8 can encode: no lone surrogates (category Cs), which no UTF-8 store can keep."""

SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc"], exclude_characters="/\\"),
    min_size=1,
    max_size=12,
).filter(lambda name: name not in {".", ".."})
"""One valid path component: anything but a separator, a backslash, a control character
(refused: deepagents' glob helper separates results with newlines), `.` and `..`."""

HUGE = 10**9


def test_text_round_trip(backend: BackendProtocol, kind: str) -> None:
    @examples(kind)
    @given(text=TEXT)
    def check(text: str) -> None:
        write_files(backend, {"/prop/text.txt": text})

        result = backend.read("/prop/text.txt", limit=HUGE)
        expected = deepagents_read(text, 0, HUGE)

        assert (result.error, window(result)) == (expected.error, window(expected))
        normalised = text.replace("\r\n", "\n").replace("\r", "\n") if text.strip() else text
        assert window(result)[0] == normalised
        assert download(backend, "/prop/text.txt") == text.encode("utf-8")

    check()


def test_edit_round_trip(backend: BackendProtocol, kind: str) -> None:
    @examples(kind)
    @given(before=TEXT, old=TEXT.filter(bool), new=TEXT, after=TEXT)
    def check(before: str, old: str, new: str, after: str) -> None:
        assume((before + old + after).count(old) == 1)
        write_files(backend, {"/prop/edit.txt": before + old + after})

        result = backend.edit("/prop/edit.txt", old, new)

        assert (result.error, result.occurrences) == (None, 1)
        assert download(backend, "/prop/edit.txt") == (before + new + after).encode("utf-8")

    check()


def test_bytes_round_trip(backend: BackendProtocol, kind: str) -> None:
    @examples(kind)
    @given(content=st.binary(max_size=4096))
    def check(content: bytes) -> None:
        upload(backend, {"/prop/blob": content})

        assert download(backend, "/prop/blob") == content
        try:
            content.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "base64"
        assert file_data(backend, "/prop/blob", limit=HUGE)["encoding"] == encoding

    check()


def test_paths_round_trip(backend: BackendProtocol, kind: str) -> None:
    roots = (f"/paths-{n}" for n in itertools.count())

    @examples(kind)
    @given(segments=st.lists(SEGMENT, min_size=1, max_size=4))
    def check(segments: list[str]) -> None:
        root = next(roots)
        path = "/".join([root, *segments])
        write_files(backend, {path: "x"})

        assert tree(backend, root) == [path]
        assert found(backend.glob("{*,.*}", path=root)) == [path]
        assert download(backend, path) == b"x"

    check()
