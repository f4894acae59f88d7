"""Path rules shared by every backend, so a path means the same file on Redis, S3 and memory.

deepagents' own backends trust the middleware to have normalised paths; ours are also called
directly (uploads, the CLI, other services), and a key-value store would happily keep `/a/../b`
and `/b` as two different files. So every path is checked and normalised here, once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidPathError(ValueError):
    """A path no backend will store: the message says which rule it broke."""


HOME = "~"
"""deepagents' `StateBackend` keeps a `~/...` path as written (the guide's
`memory=["~/.deepagents/preferences.md"]`, seeded through `invoke({"files": ...})`): here it
names the file `/~/...`, the same one for every spelling that reaches a backend."""


def normalize(path: object) -> str:
    """The canonical form of an absolute path: `/a//b/./c/` becomes `/a/b/c`, `~/a` is `/~/a`."""
    if not isinstance(path, str):
        raise InvalidPathError(f"path must be a string, got {type(path).__name__}")
    if path == HOME or path.startswith(HOME + "/"):
        path = "/" + path
    if not path.startswith("/"):
        raise InvalidPathError(f"path must be absolute (start with '/'): {path!r}")
    if "\x00" in path:
        raise InvalidPathError(f"path contains a NUL byte: {path!r}")
    if _CONTROL.search(path):
        # deepagents joins glob results with newlines; no store should keep such a name.
        raise InvalidPathError(f"path contains a control character: {path!r}")
    if "\\" in path:
        raise InvalidPathError(f"path contains a backslash: {path!r}")
    names = [name for name in path.split("/") if name not in ("", ".")]
    if ".." in names:
        raise InvalidPathError(f"path may not contain '..': {path!r}")
    for name in names:
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise InvalidPathError(f"path component longer than {MAX_NAME_BYTES} bytes: {name[:40]!r}...")
    normalized = "/" + "/".join(names)
    if len(normalized.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPathError(f"path longer than {MAX_PATH_BYTES} bytes: {normalized[:60]!r}...")
    try:
        normalized.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidPathError(f"path is not valid UTF-8: {path!r}") from error
    return normalized


def normalize_file(path: object) -> str:
    """A path that can name a file: anything but the root."""
    normalized = normalize(path)
    if normalized == "/":
        raise InvalidPathError("'/' is the root directory, not a file")
    return normalized


@functools.lru_cache(maxsize=4096)  # every write indexes its path; paths repeat
def ancestors(path: str) -> tuple[tuple[str, str], ...]:
    """(directory, entry) pairs from the root down that index a file.

    `/a/b/c.txt` gives `(("/", "a/"), ("/a", "b/"), ("/a/b", "c.txt"))`: directories are entries
    with a trailing slash, so one set per directory answers `ls` without a scan.
    """
    names = path.strip("/").split("/")
    directories = ["/"] + ["/" + "/".join(names[:depth]) for depth in range(1, len(names))]
    entries = [name + "/" for name in names[:-1]] + names[-1:]
    return tuple(zip(directories, entries, strict=True))


def children(directory: str, entries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The inverse of `ancestors` for one directory: its entries as sorted (file paths,
    subdirectory paths), e.g. `('/a', ['b.txt', 'sub/'])` gives `(['/a/b.txt'], ['/a/sub'])`."""
    base = directory.rstrip("/")
    files: list[str] = []
    subdirectories: list[str] = []
    for entry in sorted(entries):
        if entry.endswith("/"):
            subdirectories.append(f"{base}/{entry[:-1]}")
        else:
            files.append(f"{base}/{entry}")
    return files, subdirectories


def under(path: str, root: str) -> bool:
    """Whether `path` is `root` itself or anywhere below it."""
    return root in {"/", path} or path.startswith(root + "/")
