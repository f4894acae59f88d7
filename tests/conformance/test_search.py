"""`grep`, `glob` and `ls`: literal search, deepagents' glob contract, one directory level."""

from __future__ import annotations

import pytest
from deepagents.backends.protocol import BackendProtocol

from tests.conformance.support import Hit, entries, found, hits, ours, upload, write_files

PROJECT = {
    "/top.py": "print('top')\n",
    "/src/util.py": "a+b = 1\nx = a.b\n",
    "/src/app/main.py": "import util\nprint(util.a.b)\n",
    "/src/app/notes.md": "a.b in notes\n",
    "/docs/readme.md": "see a.b\n",
    "/.github/workflows/ci.yml": "run: a.b\n",
    "/srcs/other.py": "a.b elsewhere\n",
}
"""`/srcs` shares a prefix with `/src`: a search of `/src` must not reach it."""

A_DOT_B: dict[str, Hit] = {
    "util": ("/src/util.py", 2, "x = a.b"),
    "main": ("/src/app/main.py", 2, "print(util.a.b)"),
    "notes": ("/src/app/notes.md", 1, "a.b in notes"),
    "readme": ("/docs/readme.md", 1, "see a.b"),
    "ci": ("/.github/workflows/ci.yml", 1, "run: a.b"),
    "other": ("/srcs/other.py", 1, "a.b elsewhere"),
}


@pytest.fixture
def project(backend: BackendProtocol) -> BackendProtocol:
    write_files(backend, PROJECT)
    return backend


def a_dot_b(*names: str) -> list[Hit]:
    return sorted(A_DOT_B[name] for name in names)


# grep


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("a.b", a_dot_b("util", "main", "notes", "readme", "ci", "other")),
        ("a+b", [("/src/util.py", 1, "a+b = 1")]),
        ("(util", [("/src/app/main.py", 2, "print(util.a.b)")]),
        ("print('", [("/top.py", 1, "print('top')")]),
        (".*", []),
        ("A.B", []),
    ],
    ids=["dot", "plus", "paren", "quote", "dot-star", "case"],
)
def test_grep_is_literal(project: BackendProtocol, pattern: str, expected: list[Hit]) -> None:
    result = project.grep(pattern)

    assert hits(result) == expected
    assert result.truncated is False


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        (None, "*.py", a_dot_b("util", "main", "other")),
        (None, "src/**/*.py", a_dot_b("util", "main")),
        (None, "*.{md,yml}", a_dot_b("notes", "readme", "ci")),
        (None, "**/*.yml", []),
        ("/src", None, a_dot_b("util", "main", "notes")),
        ("/src/", None, a_dot_b("util", "main", "notes")),
        ("/src", "app/*.md", a_dot_b("notes")),
        ("/src/util.py", None, a_dot_b("util")),
        ("/src/util.py", "*.md", []),
        ("/sr", None, []),
        ("/nowhere", None, []),
    ],
    ids=[
        "bare-glob",
        "globstar",
        "braces",
        "globstar-skips-dot-dirs",
        "path",
        "path-trailing-slash",
        "path-and-glob",
        "path-is-a-file",
        "file-not-matching-glob",
        "prefix-is-not-a-directory",
        "missing-path",
    ],
)
def test_grep_filters(
    project: BackendProtocol, path: str | None, glob: str | None, expected: list[Hit]
) -> None:
    assert hits(project.grep("a.b", path=path, glob=glob)) == expected


@pytest.mark.parametrize(
    ("max_count", "count", "truncated"),
    [(None, 8, False), (20, 8, False), (8, 8, False), (7, 7, True), (5, 5, True), (1, 1, True)],
)
def test_grep_max_count_is_a_total_cap(
    backend: BackendProtocol, max_count: int | None, count: int, truncated: bool
) -> None:
    write_files(
        backend,
        {
            "/many.txt": "".join(f"hit {n}\nmiss\n" for n in range(5)),
            "/more/few.txt": "hit\nhit\nhit\n",
        },
    )

    result = backend.grep("hit", max_count=max_count)

    assert result.error is None
    assert result.matches is not None
    assert (len(result.matches), result.truncated) == (count, truncated)
    assert all(match["text"].startswith("hit") for match in result.matches)


def test_grep_skips_binary_files(backend: BackendProtocol) -> None:
    write_files(backend, {"/text.txt": "a needle here\n"})
    upload(backend, {"/blob.bin": b"needle\xff\xfe\nneedle\n"})

    assert hits(backend.grep("needle")) == [("/text.txt", 1, "a needle here")]


def test_grep_refuses_a_bad_glob(project: BackendProtocol) -> None:
    result = project.grep("a.b", glob="../*.py")

    assert result.error is not None
    assert "traversal" in result.error
    assert not result.matches


# glob


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.py", None, ["/src/app/main.py", "/src/util.py", "/srcs/other.py", "/top.py"]),
        ("/*.py", None, ["/top.py"]),
        ("**/*.py", None, ["/src/app/main.py", "/src/util.py", "/srcs/other.py", "/top.py"]),
        ("src/**/*.py", None, ["/src/app/main.py", "/src/util.py"]),
        ("src/*", None, ["/src/util.py"]),
        ("*.{md,yml}", None, ["/.github/workflows/ci.yml", "/docs/readme.md", "/src/app/notes.md"]),
        ("*.yml", None, ["/.github/workflows/ci.yml"]),
        ("**/*.yml", None, []),
        ("?op.py", None, ["/top.py"]),
        ("[st]*.py", None, ["/top.py"]),
        ("*.py", "/src", ["/src/app/main.py", "/src/util.py"]),
        ("app/*", "/src/", ["/src/app/main.py", "/src/app/notes.md"]),
        ("*.py", "/top.py", ["/top.py"]),
        ("*", "/sr", []),
        ("*", "/nowhere", []),
        ("*.{py", None, []),
    ],
    ids=[
        "bare",
        "anchored",
        "globstar",
        "globstar-below",
        "one-level",
        "braces",
        "dot-dirs-for-bare",
        "no-dot-dirs-for-globstar",
        "question-mark",
        "class",
        "path",
        "path-relative-pattern",
        "path-is-a-file",
        "prefix-is-not-a-directory",
        "missing-path",
        "unclosed-brace-matches-nothing",
    ],
)
def test_glob(project: BackendProtocol, pattern: str, path: str | None, expected: list[str]) -> None:
    result = project.glob(pattern, path=path)

    assert found(result) == expected
    assert result.truncated is False


@pytest.mark.parametrize(
    "pattern", ["../*.py", "src/../*.py", "{a,b}" * 11], ids=["up", "inner-up", "too-many"]
)
def test_glob_reports_a_bad_pattern(project: BackendProtocol, pattern: str) -> None:
    result = project.glob(pattern)

    assert result.error is not None
    assert pattern in result.error
    assert result.matches is None


def test_glob_reports_absolute_paths_and_sizes(backend: BackendProtocol) -> None:
    write_files(
        backend, {"/sizes/ascii.txt": "hello", "/sizes/utf8.txt": "héllo ✓", "/sizes/deep/empty.txt": ""}
    )

    result = backend.glob("*.txt", path="/sizes")

    assert result.matches is not None
    assert sorted((info["path"], info.get("is_dir"), info.get("size")) for info in result.matches) == [
        ("/sizes/ascii.txt", False, 5),
        ("/sizes/deep/empty.txt", False, 0),
        ("/sizes/utf8.txt", False, 10),
    ]


# ls


def test_ls_lists_direct_children_sorted(project: BackendProtocol) -> None:
    assert entries(project.ls("/")) == [
        ("/.github/", True, 0),
        ("/docs/", True, 0),
        ("/src/", True, 0),
        ("/srcs/", True, 0),
        ("/top.py", False, 13),
    ]


@pytest.mark.parametrize("path", ["/src", "/src/"])
def test_ls_of_a_subdirectory(project: BackendProtocol, path: str) -> None:
    assert entries(project.ls(path)) == [("/src/app/", True, 0), ("/src/util.py", False, 16)]


@pytest.mark.parametrize("path", ["/nowhere", "/sr"], ids=["missing", "prefix-is-not-a-directory"])
def test_ls_of_a_missing_directory_is_empty(project: BackendProtocol, path: str) -> None:
    assert entries(project.ls(path)) == []


def test_ls_gives_files_a_modification_time(project: BackendProtocol) -> None:
    result = project.ls("/src/app")

    assert result.entries is not None
    assert [(info["path"], bool(info.get("modified_at"))) for info in result.entries] == [
        ("/src/app/main.py", True),
        ("/src/app/notes.md", True),
    ]


def test_ls_size_of_a_binary_file(backend: BackendProtocol) -> None:
    upload(backend, {"/bin/blob.bin": bytes(range(256))})

    (size,) = [size for _path, _is_dir, size in entries(backend.ls("/bin"))]

    # The reference measures the base64 text it keeps; we report the file's bytes.
    assert size == (256 if ours(backend) else 344)
