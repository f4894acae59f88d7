"""deepagents' `BackendProtocol` over any `Store`: one implementation of file semantics for all.

Every operation is written once, as a generator of the store calls it needs (`store_calls`):
the blocking tools run it on the store's blocking methods, the async tools on their async twins,
so the two behave identically and neither copies the other. Line windows, edit matching,
literal grep and glob rules are deepagents' own helpers, so an agent sees the same results and
messages as on deepagents' built-in backends.
"""

from __future__ import annotations

import base64
import contextlib
import random
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

from deepagents.backends.protocol import (
    BackendProtocol,
    DeleteResult,
    EditResult,
    FileData,
    FileDownloadResponse,
    FileInfo,
    FileUploadResponse,
    GlobResult,
    GrepMatch,
    GrepResult,
    LsResult,
    ReadResult,
    WriteResult,
)

# The three private helpers have no public equivalent in deepagents 0.7; they are what its own
# StateBackend and StoreBackend use, so files are classified and globs matched exactly as there.
# tests/conformance runs the same cases on StoreBackend, and fails if they change or go.
from deepagents.backends.utils import (
    InvalidGlobPatternError,
    _get_backend_read_file_type,
    _glob_search_files,
    _relative_to_root,
    compile_grep_include_glob,
    grep_matches_from_files,
    perform_string_replacement,
    slice_read_response,
)

from shared.bound import bound
from shared.files.paths import InvalidPathError, normalize, normalize_file
from shared.files.store import ANY, Entry, Listing, Store, Stored
from shared.files.store_calls import ListDir, Load, Operation, Remove, Save, Sleep, Walk, arun, run

EDIT_ATTEMPTS = 64
"""Concurrent edits of one file retry this often before giving up with an error."""

GREP_BATCH_BYTES = 16 * 1024 * 1024
"""Grep loads files in batches of about this many bytes: few round trips, bounded memory."""

_written: ContextVar[list[str] | None] = ContextVar("taskforce_written_paths", default=None)


def recording_writes() -> contextlib.AbstractContextManager[list[str]]:
    """Collect the paths written while the block runs: a worker reports them as artifacts.

    A context variable rather than a per-delegation backend, so that one compiled subagent
    (and its backend) can serve many delegations at once.
    """
    written: list[str] = []
    return bound(_written, written)


def _note_written(path: str) -> None:
    written = _written.get()
    if written is not None and path not in written:
        written.append(path)


def _text(stored: Stored) -> str:
    if stored.binary:
        return base64.standard_b64encode(stored.content).decode("ascii")
    return stored.content.decode("utf-8")


def file_data(stored: Stored) -> FileData:
    """A stored file as deepagents' `FileData`: binary content travels base64-encoded."""
    return FileData(
        content=_text(stored),
        encoding="base64" if stored.binary else "utf-8",
        created_at=stored.created_at,
        modified_at=stored.modified_at,
    )


def _info(entry: Entry) -> FileInfo:
    return FileInfo(path=entry.path, is_dir=False, size=entry.size, modified_at=entry.modified_at)


def _invalid(error: InvalidPathError) -> str:
    return f"Error: invalid_path: {error}"


def _is_directory(listing: Listing) -> bool:
    return bool(listing.files or listing.directories)


def _ls(path: str) -> Operation[LsResult]:
    try:
        directory = normalize(path)
    except InvalidPathError as error:
        return LsResult(error=_invalid(error))
    listing = yield from ListDir(directory)
    entries = [_info(entry) for entry in listing.files]
    entries += [FileInfo(path=sub + "/", is_dir=True, size=0, modified_at="") for sub in listing.directories]
    entries.sort(key=lambda info: info["path"])
    return LsResult(entries=entries)


def _read(path: str, offset: int, limit: int) -> Operation[ReadResult]:
    try:
        file_path = normalize_file(path)
    except InvalidPathError as error:
        return ReadResult(error=_invalid(error))
    (stored,) = yield from Load([file_path])
    if stored is None:
        if _is_directory((yield from ListDir(file_path))):
            return ReadResult(error=f"Error: '{file_path}' is a directory (is_directory); use ls")
        return ReadResult(error=f"File '{file_path}' not found")
    data = file_data(stored)
    if _get_backend_read_file_type(file_path) != "text":
        return ReadResult(file_data=data)
    return slice_read_response(data, offset, limit)


def _write(path: str, content: str) -> Operation[WriteResult]:
    try:
        file_path = normalize_file(path)
        encoded = content.encode("utf-8")
    except InvalidPathError as error:
        return WriteResult(error=_invalid(error))
    except UnicodeEncodeError as error:
        return WriteResult(error=f"Error: content is not valid text: {error.reason}")
    yield from Save(file_path, encoded, expect=ANY)
    _note_written(file_path)
    return WriteResult(path=file_path)


def _edit(path: str, old: str, new: str, replace_all: bool) -> Operation[EditResult]:  # noqa: PLR0911 - one return per way deepagents reports a failed edit
    try:
        file_path = normalize_file(path)
    except InvalidPathError as error:
        return EditResult(error=_invalid(error))
    for attempt in range(EDIT_ATTEMPTS):
        (stored,) = yield from Load([file_path])
        if stored is None:
            return EditResult(error=f"Error: File '{file_path}' not found")
        if stored.binary:
            return EditResult(error="Error: Cannot edit binary files with text replacements.")
        replaced = perform_string_replacement(stored.content.decode("utf-8"), old, new, replace_all)
        if isinstance(replaced, str):
            return EditResult(error=replaced)
        content, occurrences = replaced
        try:
            encoded = content.encode("utf-8")
        except UnicodeEncodeError as error:
            return EditResult(error=f"Error: new_string is not valid text: {error.reason}")
        version = yield from Save(file_path, encoded, expect=stored.version, created_at=stored.created_at)
        if version is not None:
            _note_written(file_path)
            return EditResult(path=file_path, occurrences=int(occurrences))
        # Another writer got there first: back off a little, then edit what it wrote.
        yield from Sleep(random.uniform(0, 0.002 * (attempt + 1)))
    return EditResult(
        error=f"Error: '{file_path}' changed {EDIT_ATTEMPTS} times while being edited; try the edit again"
    )


def _files_below(root: str) -> Operation[list[Entry]]:
    """Files under a directory, or the file itself when `root` names one."""
    entries = yield from Walk(root)
    if entries or root == "/":
        return entries
    (stored,) = yield from Load([root])
    if stored is None:
        return []
    return [Entry(path=root, size=len(stored.content), modified_at=stored.modified_at)]


def _batches(entries: Sequence[Entry]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for entry in entries:
        if batch and size + entry.size > GREP_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(entry.path)
        size += entry.size
    if batch:
        yield batch


def _grep(pattern: str, path: str | None, glob: str | None, max_count: int | None) -> Operation[GrepResult]:
    try:
        root = normalize(path or "/")
        include = compile_grep_include_glob(glob) if glob else None
    except InvalidPathError as error:
        return GrepResult(error=_invalid(error))
    except InvalidGlobPatternError as error:
        return GrepResult(error=str(error))
    entries = yield from _files_below(root)
    if include is not None:
        entries = [entry for entry in entries if include(_relative_to_root(entry.path, root))]
    entries.sort(key=lambda entry: entry.path)
    matches: list[GrepMatch] = []
    for batch in _batches(entries):
        loaded = yield from Load(batch)
        files = {
            file_path: file_data(stored)
            for file_path, stored in zip(batch, loaded, strict=True)
            if stored is not None and not stored.binary
        }
        remaining = None if max_count is None else max_count - len(matches)
        found = grep_matches_from_files(files, pattern, root, max_count=remaining)
        matches.extend(found.matches or [])
        if found.truncated:
            return GrepResult(matches=matches, truncated=True)
    return GrepResult(matches=matches)


def _glob(pattern: str, path: str | None) -> Operation[GlobResult]:
    try:
        root = normalize(path or "/")
    except InvalidPathError as error:
        return GlobResult(error=_invalid(error))
    entries = yield from _files_below(root)
    by_path = {entry.path: entry for entry in entries}
    try:
        found = _glob_search_files(
            {p: {"modified_at": e.modified_at} for p, e in by_path.items()}, pattern, root
        )
    except InvalidGlobPatternError as error:
        return GlobResult(error=str(error))
    if found == "No files found":
        return GlobResult(matches=[])
    return GlobResult(matches=[_info(by_path[file_path]) for file_path in found.split("\n")])


def _delete(path: str) -> Operation[DeleteResult]:
    try:
        target = normalize(path)
    except InvalidPathError as error:
        return DeleteResult(error=_invalid(error))
    if target == "/":
        return DeleteResult(error="Error: refusing to delete '/', the whole filesystem; delete its entries")
    entries = yield from Walk(target)
    removed = yield from Remove([target, *(entry.path for entry in entries)])
    if not removed:
        return DeleteResult(error=f"Error: File '{target}' not found")
    return DeleteResult(path=target)


def _upload(files: Sequence[tuple[str, bytes]]) -> Operation[list[FileUploadResponse]]:
    responses: list[FileUploadResponse] = []
    for path, content in files:
        try:
            file_path = normalize_file(path)
        except InvalidPathError:
            responses.append(
                FileUploadResponse(path=path, error="is_directory" if path == "/" else "invalid_path")
            )
            continue
        if not isinstance(content, bytes | bytearray | memoryview):
            responses.append(
                FileUploadResponse(path=path, error=f"content must be bytes, not {type(content).__name__}")
            )
            continue
        raw = bytes(content)
        yield from Save(file_path, raw, expect=ANY)
        _note_written(file_path)
        responses.append(FileUploadResponse(path=path))
    return responses


def _download(paths: Sequence[str]) -> Operation[list[FileDownloadResponse]]:
    normalized: dict[int, str] = {}
    for index, path in enumerate(paths):
        with contextlib.suppress(InvalidPathError):
            normalized[index] = normalize_file(path)
    loaded = yield from Load(list(normalized.values()))
    stored_at = dict(zip(normalized, loaded, strict=True))
    responses: list[FileDownloadResponse] = []
    for index, path in enumerate(paths):
        if index not in normalized:
            responses.append(
                FileDownloadResponse(path=path, error="is_directory" if path == "/" else "invalid_path")
            )
        elif (stored := stored_at[index]) is not None:
            responses.append(FileDownloadResponse(path=path, content=stored.content))
        else:
            listing = yield from ListDir(normalized[index])
            error = "is_directory" if _is_directory(listing) else "file_not_found"
            responses.append(FileDownloadResponse(path=path, error=error))
    return responses


class FilesBackend(BackendProtocol):
    """A deepagents filesystem kept in a `Store` that many processes and machines share."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def ls(self, path: str) -> LsResult:
        return run(self.store, _ls(path))

    async def als(self, path: str) -> LsResult:
        return await arun(self.store, _ls(path))

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return run(self.store, _read(file_path, offset, limit))

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return await arun(self.store, _read(file_path, offset, limit))

    def write(self, file_path: str, content: str) -> WriteResult:
        return run(self.store, _write(file_path, content))

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        return await arun(self.store, _write(file_path, content))

    def edit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        return run(self.store, _edit(file_path, old_string, new_string, replace_all))

    async def aedit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        return await arun(self.store, _edit(file_path, old_string, new_string, replace_all))

    def grep(
        self, pattern: str, path: str | None = None, glob: str | None = None, *, max_count: int | None = None
    ) -> GrepResult:
        return run(self.store, _grep(pattern, path, glob, max_count))

    async def agrep(
        self, pattern: str, path: str | None = None, glob: str | None = None, *, max_count: int | None = None
    ) -> GrepResult:
        return await arun(self.store, _grep(pattern, path, glob, max_count))

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        return run(self.store, _glob(pattern, path))

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        return await arun(self.store, _glob(pattern, path))

    def delete(self, file_path: str) -> DeleteResult:
        return run(self.store, _delete(file_path))

    async def adelete(self, file_path: str) -> DeleteResult:
        return await arun(self.store, _delete(file_path))

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return run(self.store, _upload(files))

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return await arun(self.store, _upload(files))

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return run(self.store, _download(paths))

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return await arun(self.store, _download(paths))
