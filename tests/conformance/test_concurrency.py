"""Concurrent edits of one file lose no update: each store rejects a save whose version moved on,
and the edit retries. Not for the reference, whose edit is a plain read-modify-write."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.files.backend import FilesBackend
from tests.conformance.support import download, write_files

END = "<END>"
"""A sentinel each edit replaces with one new line followed by the sentinel again, so that every
successful edit adds exactly one line."""

PATH = "/shared/log.txt"


def appended_lines(backend: FilesBackend) -> list[str]:
    """The lines the edits added, in file order, after checking the sentinel is still last."""
    *lines, last = download(backend, PATH).decode().split("\n")
    assert last == END
    return lines


def test_threads_editing_one_file_lose_no_update(our_backend: FilesBackend) -> None:
    threads, edits = 16, 10
    write_files(our_backend, {PATH: END})
    start = threading.Barrier(threads)

    def append(worker: int) -> list[str | None]:
        start.wait()
        return [our_backend.edit(PATH, END, f"line-{worker}-{n}\n{END}").error for n in range(edits)]

    with ThreadPoolExecutor(threads) as pool:
        errors = [error for worker_errors in pool.map(append, range(threads)) for error in worker_errors]

    assert [error for error in errors if error is not None] == []
    lines = appended_lines(our_backend)
    assert sorted(lines) == sorted(f"line-{w}-{n}" for w in range(threads) for n in range(edits))
    for worker in range(threads):
        own = [line for line in lines if line.startswith(f"line-{worker}-")]
        assert own == [f"line-{worker}-{n}" for n in range(edits)], "one worker's edits land in its order"


def test_gathered_async_edits_lose_no_update(our_backend: FilesBackend) -> None:
    tasks = 50
    write_files(our_backend, {PATH: END})

    async def append_all() -> list[str | None]:
        results = await asyncio.gather(
            *(our_backend.aedit(PATH, END, f"task-{n}\n{END}") for n in range(tasks))
        )
        return [result.error for result in results]

    errors = asyncio.run(append_all())

    assert [error for error in errors if error is not None] == []
    assert sorted(appended_lines(our_backend)) == sorted(f"task-{n}" for n in range(tasks))
