"""Files in a directory that several processes, on one machine or many (NFS), share.

A file is stored as itself, with nothing beside it, so the directory stays readable with
ordinary tools and needs no migration when looked at by hand. What the `Store` contract asks
beyond bytes is derived instead:

- `binary` is whether the content is not valid UTF-8, read off the bytes.
- `created_at` rides in an extended attribute (`user.taskforce.created_at`) where the
  filesystem has them, copied onto every new generation of the file so overwrites keep it.
  Where it has none (older NFS, macOS, some container mounts), `created_at` falls back to the
  modification time: an overwrite then looks like a new file.
- the version token is `mtime_ns:size:inode`. Every write lands as a new inode (temp file +
  `os.replace`), and its mtime is set explicitly to strictly after the one it replaces, so a
  token can never come back (no ABA) even though the kernel's own timestamps are coarse and
  inode numbers are recycled.

Compare-and-swap holds an exclusive `flock` on a hidden lock file in the file's directory
while it checks the current version and replaces the file; readers take no lock because a
replace is atomic. On NFS, `flock` becomes a POSIX lock (NFSv4 or lockd must work), and POSIX
locks do not exclude threads of one process, so threads also take an in-process lock first.
Windows is not supported (`fcntl`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import posixpath
import secrets
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shared.files.paths import InvalidPathError, normalize, normalize_file
from shared.files.scopes import scope_name
from shared.files.store import ABSENT, ANY, Entry, Expect, Listing, Store, Stored, is_binary
from shared.urls import mask_url

RESERVED_PREFIX = ".taskforce."
"""Names the store keeps for itself (lock and temp files); agents may not use them."""

LOCK_NAME = RESERVED_PREFIX + "lock"
TEMP_PREFIX = RESERVED_PREFIX + "tmp."
CREATED_XATTR = "user.taskforce.created_at"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Threads of one process serialise per directory here before taking the file lock, because on
# NFS the file lock is per process. Striped rather than one lock per directory so memory stays
# bounded; a thread never holds two directory locks at once, so sharing a stripe cannot deadlock.
_THREAD_LOCKS = tuple(threading.Lock() for _ in range(64))


def _fresh_thread_locks() -> None:
    # A fork copies locks held by other threads, which no thread of the child would release.
    global _THREAD_LOCKS  # noqa: PLW0603
    _THREAD_LOCKS = tuple(threading.Lock() for _ in range(64))


os.register_at_fork(after_in_child=_fresh_thread_locks)


class LocalConfigError(ValueError):
    """A `file:` URL that does not name a local absolute directory."""


class _DirectoryGoneError(Exception):
    """The directory disappeared (pruned by a concurrent `remove`) before it could be locked."""


class LocalStore(Store):
    """Files under `root`: the store path `/a/b.txt` is the file `root/a/b.txt`.

    Scopes are subdirectories, so a store over `root` also sees its scopes as directories:
    use one store either as a parent of scopes or for files of its own.

    `save` raises `ValueError` when the path cannot hold a file (it is a directory, or a
    parent is a file): that is a caller's mistake, not a version conflict, so it is not None.
    """

    def __init__(self, root: Path, *, ttl_s: int | None = None) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as error:
            raise LocalConfigError(f"store root is not a directory: {str(root)!r}") from error
        self.root = root.resolve()
        # No native expiry: kept so that `taskforce files prune` knows what to delete.
        self.ttl_s = ttl_s

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        return cls(cls.root_of(url))

    @staticmethod
    def root_of(url: str) -> Path:
        """The directory a file URL names, without creating it. Accepts `file:///abs/dir`,
        `file:/abs/dir` and `file://localhost/abs/dir`."""
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise LocalConfigError(f"not a file URL (expected file:///absolute/dir): {mask_url(url)!r}")
        if parts.netloc not in ("", "localhost"):
            raise LocalConfigError(
                f"file URL names host {parts.netloc.rpartition('@')[2]!r}; only local directories are "
                "supported (file:///absolute/dir; mount a network disk and use its local path): "
                f"{mask_url(url)!r}"
            )
        if parts.query or parts.fragment:
            raise LocalConfigError(f"file URL may not have a query or fragment: {mask_url(url)!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise LocalConfigError(f"file URL must name an absolute directory (file:///dir): {url!r}")
        if "\x00" in path:
            raise LocalConfigError(f"file URL contains a NUL byte: {url!r}")
        return Path(path)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def scope(self, name: str, *, ttl_s: int | None = None) -> LocalStore:
        segments = scope_name(name).split("/")
        if any(segment.startswith(RESERVED_PREFIX) for segment in segments):
            raise ValueError(f"invalid scope name {name!r}: no segment may start with {RESERVED_PREFIX!r}")
        child = LocalStore(self.root.joinpath(*segments), ttl_s=ttl_s)
        if not child.root.is_relative_to(self.root):
            raise ValueError(f"scope {name!r} resolves outside the store: {str(child.root)!r}")
        return child

    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        return [self._load_one(self._file(path)) for path in paths]

    def save(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        target = self._file(path)
        directory = target.parent
        # A concurrent `remove` may prune the directory between creating and locking it.
        for _ in range(100):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as error:
                # mkdir also fails so when a concurrent `remove` pruned a directory it had found.
                if _file_in_the_way(directory, self.root):
                    raise ValueError(f"cannot save {path!r}: a parent directory is a file") from error
                continue
            except FileNotFoundError:
                continue
            try:
                with _locked(directory):
                    return self._save_locked(path, target, content, expect, created_at)
            except _DirectoryGoneError:
                continue
        raise OSError(f"cannot save {path!r}: its directory keeps disappearing")

    def listing(self, directory: str) -> Listing:
        base = normalize(directory)
        files: list[Entry] = []
        directories: list[str] = []
        for entry in _scan(self._dir(base)):
            child = posixpath.join(base, entry.name)
            if entry.is_dir(follow_symlinks=False):
                directories.append(child)
            elif (found := _entry(entry, child)) is not None:
                files.append(found)
        return Listing(files=sorted(files, key=lambda e: e.path), directories=sorted(directories))

    def walk(self, directory: str) -> list[Entry]:
        pending = [(normalize(directory), self._dir(normalize(directory)))]
        files: list[Entry] = []
        while pending:
            base, real = pending.pop()
            for entry in _scan(real):
                child = posixpath.join(base, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    pending.append((child, Path(entry.path)))
                elif (found := _entry(entry, child)) is not None:
                    files.append(found)
        return sorted(files, key=lambda e: e.path)

    def remove(self, paths: Sequence[str]) -> int:
        removed = 0
        emptied: set[Path] = set()
        for path in paths:
            target = self._file(path)
            # Absent now: nothing to lock (a file created after this check was created after
            # the removal), and no lock file gets created in a directory that stays empty.
            if not _is_file(target):
                continue
            try:
                with _locked(target.parent):
                    if not _is_file(target):
                        continue
                    os.unlink(target)
            except _DirectoryGoneError:
                continue
            removed += 1
            emptied.add(target.parent)
        for directory in sorted(emptied, key=lambda d: len(d.parts), reverse=True):
            self._prune(directory)
        return removed

    def _file(self, path: str) -> Path:
        return self._real(normalize_file(path))

    def _dir(self, path: str) -> Path:
        return self._real(normalize(path))

    def _real(self, path: str) -> Path:
        names = [name for name in path.split("/") if name]
        for name in names:
            if name.startswith(RESERVED_PREFIX):
                raise InvalidPathError(f"names starting with {RESERVED_PREFIX!r} are reserved: {path!r}")
        # Normalised paths cannot climb out, but a symlink placed by hand could.
        real = self.root.joinpath(*names).resolve()
        if not real.is_relative_to(self.root):
            raise InvalidPathError(f"path leads outside the store: {path!r}")
        return real

    def _load_one(self, target: Path) -> Stored | None:
        try:
            # O_NONBLOCK so that a FIFO someone left here cannot hang the read.
            fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        with open(fd, "rb") as file:
            content = file.read()
            created = _read_created(fd)
        modified = _iso(st)
        return Stored(
            content=content,
            binary=is_binary(content),
            created_at=created or modified,
            modified_at=modified,
            version=_version(st),
        )

    def _save_locked(
        self, path: str, target: Path, content: bytes, expect: Expect, created_at: str | None
    ) -> str | None:
        current, current_created = _current(path, target)
        if expect is not ANY:
            if expect == ABSENT:
                if current is not None:
                    return None
            elif current is None or _version(current) != expect:
                return None
        if current is None:
            created, floor = created_at, 0
        else:
            created, floor = current_created or _iso(current), current.st_mtime_ns + 1
        temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                written = _stamp(fd, max(time.time_ns(), floor), floor)
                # A new file is created when it is first modified, to the microsecond.
                _write_created(fd, created or _iso(written))
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        # rename keeps inode, size and mtime, so the temp file's stat is the stored version.
        return _version(written)

    def _prune(self, directory: Path) -> None:
        """Drop `directory` and its ancestors while empty, stopping at the store root.

        The lock file is unlinked while held, so a writer waiting on it sees it went stale
        and starts over; the directory is removed only after the lock is released, because
        on NFS an open unlinked file lingers as `.nfsXXXX` and keeps the directory non-empty.
        """
        while directory != self.root and directory.is_relative_to(self.root):
            if not _only_lock(directory):  # checked first too, to leave no lock file behind
                return
            try:
                with _locked(directory):
                    if not _only_lock(directory):
                        return
                    os.unlink(directory / LOCK_NAME)
            except _DirectoryGoneError:
                directory = directory.parent
                continue
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                return  # a writer got in after the lock was released
            directory = directory.parent


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the exclusive lock of `directory`; `_DirectoryGoneError` if it does not exist."""
    lock_path = directory / LOCK_NAME
    with _THREAD_LOCKS[hash(str(directory)) % len(_THREAD_LOCKS)]:
        while True:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except (FileNotFoundError, NotADirectoryError) as error:
                raise _DirectoryGoneError(str(directory)) from error
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as error:
                    if error.errno != errno.ESTALE:  # NFS: the lock file was removed meanwhile
                        raise
                    continue
                # A pruning `remove` unlinks the lock file while holding it: if it did so
                # while we waited, we hold a lock nobody else will look at, so start over.
                if not _same_file(fd, lock_path):
                    continue
                yield
                return
            finally:
                os.close(fd)


def _file_in_the_way(directory: Path, root: Path) -> bool:
    """Whether a file stands where `directory` or one of its parents under `root` should be."""
    for candidate in (directory, *directory.parents):
        if candidate == root or not candidate.is_relative_to(root):
            return False
        if candidate.exists() and not candidate.is_dir():
            return True
    return False


def _only_lock(directory: Path) -> bool:
    """Whether `directory` is empty but for its lock file (or gone)."""
    try:
        return all(name == LOCK_NAME for name in os.listdir(directory))
    except FileNotFoundError:
        return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _current(path: str, target: Path) -> tuple[os.stat_result | None, str | None]:
    """The file now at `target` and its kept creation time.

    Opened rather than stat'ed: on NFS an open revalidates cached attributes (close-to-open).
    """
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except NotADirectoryError as error:
        raise ValueError(f"cannot save {path!r}: a parent directory is a file") from error
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"cannot save {path!r}: it is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"cannot save {path!r}: it is not a regular file")
        return st, _read_created(fd)
    finally:
        os.close(fd)


def _stamp(fd: int, mtime_ns: int, floor: int) -> os.stat_result:
    """Set the mtime so that versions of one path only ever increase.

    Filesystems that keep coarser timestamps (whole seconds on some) round the mtime down:
    step further past the previous version until it sticks.
    """
    step = 1
    while True:
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        st = os.fstat(fd)
        if st.st_mtime_ns >= floor:
            return st
        if step > 10**10:
            raise OSError(
                f"filesystem does not keep modification times (set {mtime_ns}, got {st.st_mtime_ns})"
            )
        step *= 10
        mtime_ns = floor + step


def _read_created(fd: int) -> str | None:
    if sys.platform != "linux":
        return None
    try:
        return os.getxattr(fd, CREATED_XATTR).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write_created(fd: int, created_at: str) -> None:
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):  # no xattrs here: created_at falls back to mtime
        os.setxattr(fd, CREATED_XATTR, created_at.encode("utf-8"))


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    """The entries an agent may see: no lock or temp files, no symlinks, no names it could not
    write back (not UTF-8)."""
    try:
        with os.scandir(directory) as entries:
            return [
                entry
                for entry in entries
                if not entry.name.startswith(RESERVED_PREFIX) and not entry.is_symlink() and _utf8(entry.name)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _entry(entry: os.DirEntry[str], path: str) -> Entry | None:
    if not entry.is_file(follow_symlinks=False):
        return None
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # removed since the scan
        return None
    return Entry(path=path, size=st.st_size, modified_at=_iso(st))


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}"


def _iso(st: os.stat_result) -> str:
    # From the integer nanoseconds, not the float `st_mtime`, so the same mtime always gives
    # the same string (created_at of a new file is compared with its modified_at).
    return (_EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)).isoformat()


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
