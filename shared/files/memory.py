"""`memory://`: files in this process only, for tests and single-process experiments.

Workers on other machines cannot see these files; `memory://` exists so code that takes a
files URL can be exercised without any server, with the same semantics as the shared stores.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.files.paths import ancestors, children, under
from shared.files.scopes import join_scope
from shared.files.store import ABSENT, ANY, Entry, Expect, Listing, Store, Stored, is_binary, now_iso


@dataclass
class _Space:
    """Every scope's files of one `memory://name`, under one lock."""

    files: dict[tuple[str, str], Stored] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    versions: itertools.count[int] = field(default_factory=itertools.count)


_spaces: dict[str, _Space] = {}
_spaces_lock = threading.Lock()


class MemoryStore(Store):
    """A dict behind a lock, keyed by (scope, path) so that scopes cannot overlap."""

    def __init__(self, name: str = "", *, scope: str = "", ttl_s: int | None = None) -> None:
        with _spaces_lock:
            self._space = _spaces.setdefault(name, _Space())
        self._name = name
        self._scope = scope
        self.ttl_s = ttl_s

    def scope(self, name: str, *, ttl_s: int | None = None) -> MemoryStore:
        return MemoryStore(self._name, scope=join_scope(self._scope, name), ttl_s=ttl_s)

    def _paths(self) -> list[str]:
        return [path for scope, path in self._space.files if scope == self._scope]

    def load(self, paths: Sequence[str]) -> list[Stored | None]:
        with self._space.lock:
            return [self._space.files.get((self._scope, path)) for path in paths]

    def save(
        self, path: str, content: bytes, *, expect: Expect = ANY, created_at: str | None = None
    ) -> str | None:
        key = (self._scope, path)
        with self._space.lock:
            current = self._space.files.get(key)
            if expect is not ANY and (current.version if current else ABSENT) != expect:
                return None
            now = now_iso()
            version = str(next(self._space.versions))
            first = current.created_at if current else created_at or now
            self._space.files[key] = Stored(bytes(content), is_binary(content), first, now, version)
            return version

    def listing(self, directory: str) -> Listing:
        with self._space.lock:
            entries = {entry for path in self._paths() for d, entry in ancestors(path) if d == directory}
            files, directories = children(directory, entries)
            return Listing(files=[self._entry(path) for path in files], directories=directories)

    def walk(self, directory: str) -> list[Entry]:
        with self._space.lock:
            return [
                self._entry(path) for path in self._paths() if under(path, directory) and path != directory
            ]

    def remove(self, paths: Sequence[str]) -> int:
        with self._space.lock:
            return sum(self._space.files.pop((self._scope, path), None) is not None for path in paths)

    def _entry(self, path: str) -> Entry:
        stored = self._space.files[(self._scope, path)]
        return Entry(path=path, size=len(stored.content), modified_at=stored.modified_at)
