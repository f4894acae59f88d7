"""The shared files on a Redis hash: deepagents' file semantics, shared between processes."""

from __future__ import annotations

import fakeredis
import pytest

from shared.files import (
    DEFAULT_FILES_KEY,
    FilesConfigError,
    RedisFilesBackend,
    files_backend,
    read_text,
    recording_writes,
)
from shared.settings import Settings


@pytest.fixture
def backend() -> RedisFilesBackend:
    return RedisFilesBackend(fakeredis.FakeRedis())


def content(backend: RedisFilesBackend, path: str, offset: int = 0, limit: int = 2000) -> str:
    result = backend.read(path, offset=offset, limit=limit)
    assert result.error is None, result.error
    assert result.file_data is not None
    return result.file_data["content"]


def test_write_then_read(backend: RedisFilesBackend) -> None:
    assert backend.write("/notes/a.md", "first\nsecond\nthird\n").error is None
    assert content(backend, "/notes/a.md") == "first\nsecond\nthird\n"


def test_read_a_line_window(backend: RedisFilesBackend) -> None:
    backend.write("/log.txt", "\n".join(f"line {n}" for n in range(1, 11)))

    window = backend.read("/log.txt", offset=3, limit=2)

    assert window.file_data is not None
    assert window.file_data["content"].splitlines() == ["line 4", "line 5"]
    assert (window.start_line, window.end_line, window.total_lines, window.next_offset) == (4, 5, 10, 5)


def test_read_a_missing_file(backend: RedisFilesBackend) -> None:
    assert backend.read("/nope.txt").error == "File '/nope.txt' not found"


def test_write_overwrites(backend: RedisFilesBackend) -> None:
    backend.write("/a.txt", "old")
    backend.write("/a.txt", "new")
    assert content(backend, "/a.txt") == "new"


def test_edit_a_single_occurrence(backend: RedisFilesBackend) -> None:
    backend.write("/a.txt", "status: draft\nowner: me\n")

    result = backend.edit("/a.txt", "draft", "final")

    assert (result.error, result.occurrences) == (None, 1)
    assert content(backend, "/a.txt") == "status: final\nowner: me\n"


def test_edit_refuses_an_ambiguous_string_unless_replace_all(backend: RedisFilesBackend) -> None:
    backend.write("/a.txt", "x-x-x")

    refused = backend.edit("/a.txt", "x", "y")
    assert refused.error is not None
    assert "appears 3 times" in refused.error
    assert content(backend, "/a.txt") == "x-x-x"

    replaced = backend.edit("/a.txt", "x", "y", replace_all=True)
    assert replaced.occurrences == 3
    assert content(backend, "/a.txt") == "y-y-y"


def test_edit_reports_a_missing_string(backend: RedisFilesBackend) -> None:
    backend.write("/a.txt", "hello")

    result = backend.edit("/a.txt", "absent", "x")

    assert result.error == "Error: String not found in file: 'absent'"
    assert content(backend, "/a.txt") == "hello"


def test_edit_a_missing_file(backend: RedisFilesBackend) -> None:
    assert backend.edit("/nope.txt", "a", "b").error == "Error: File '/nope.txt' not found"


def test_ls_lists_files_and_subdirectories(backend: RedisFilesBackend) -> None:
    backend.write("/proj/readme.md", "hi")
    backend.write("/proj/src/main.py", "print()")
    backend.write("/proj/src/deep/util.py", "")
    backend.write("/other/file.txt", "x")

    listing = backend.ls("/proj")

    assert listing.entries is not None
    assert [(e["path"], e.get("is_dir")) for e in listing.entries] == [
        ("/proj/readme.md", False),
        ("/proj/src/", True),
    ]
    assert listing.entries[0].get("size") == 2


def test_glob(backend: RedisFilesBackend) -> None:
    backend.write("/proj/a.py", "")
    backend.write("/proj/pkg/b.py", "")
    backend.write("/proj/notes.md", "")

    result = backend.glob("*.py", "/proj")

    assert result.matches is not None
    assert sorted(m["path"] for m in result.matches) == ["/proj/a.py", "/proj/pkg/b.py"]


def test_grep_is_literal(backend: RedisFilesBackend) -> None:
    backend.write("/a.log", "ok\nerror: disk.full\nok")
    backend.write("/b.log", "errorXdiskXfull")

    literal = backend.grep("disk.full")

    assert literal.matches == [{"path": "/a.log", "line": 2, "text": "error: disk.full"}]
    # A regex would also have matched b.log.
    assert backend.grep("error.disk").matches == []


def test_delete_a_file(backend: RedisFilesBackend) -> None:
    backend.write("/a.txt", "x")
    backend.write("/a.txt.bak", "y")

    assert backend.delete("/a.txt").error is None

    assert backend.read("/a.txt").error is not None
    assert content(backend, "/a.txt.bak") == "y"


def test_delete_a_directory_by_prefix(backend: RedisFilesBackend) -> None:
    backend.write("/dir/a.txt", "a")
    backend.write("/dir/sub/b.txt", "b")
    backend.write("/dirty.txt", "keep")

    assert backend.delete("/dir/").error is None

    assert backend.client.hkeys(backend.key) == [b"/dirty.txt"]


def test_delete_a_missing_path(backend: RedisFilesBackend) -> None:
    assert backend.delete("/nothing").error == "Error: File '/nothing' not found"


def test_upload_and_download_text_and_binary(backend: RedisFilesBackend) -> None:
    binary = b"\x89PNG\xff\xfe\x00\x01"
    text = "héllo ✓".encode()

    uploaded = backend.upload_files([("/img.png", binary), ("/t.txt", text)])
    downloaded = backend.download_files(["/img.png", "/t.txt", "/missing"])

    assert [r.error for r in uploaded] == [None, None]
    assert [(r.path, r.content, r.error) for r in downloaded] == [
        ("/img.png", binary, None),
        ("/t.txt", text, None),
        ("/missing", None, "file_not_found"),
    ]


def test_read_text(backend: RedisFilesBackend) -> None:
    backend.write("/a.md", "line one\nline two")
    assert read_text(backend, "/a.md") == "line one\nline two"


def test_read_text_of_a_missing_path(backend: RedisFilesBackend) -> None:
    with pytest.raises(FileNotFoundError, match=r"/missing\.md"):
        read_text(backend, "/missing.md")


def test_two_backends_on_one_server_share_files() -> None:
    server = fakeredis.FakeServer()
    orchestrator = RedisFilesBackend(fakeredis.FakeRedis(server=server))
    worker = RedisFilesBackend(fakeredis.FakeRedis(server=server))

    worker.write("/out/report.md", "from the worker")
    orchestrator.edit("/out/report.md", "worker", "worker, edited")

    assert read_text(worker, "/out/report.md") == "from the worker, edited"
    assert [e["path"] for e in orchestrator.ls("/out").entries or []] == ["/out/report.md"]


def test_a_backend_sees_later_writes_from_another() -> None:
    """Reads are not cached across calls: a file written after a first read is seen."""
    server = fakeredis.FakeServer()
    reader = RedisFilesBackend(fakeredis.FakeRedis(server=server))
    writer = RedisFilesBackend(fakeredis.FakeRedis(server=server))
    writer.write("/a.txt", "v1")
    assert read_text(reader, "/a.txt") == "v1"

    writer.write("/a.txt", "v2")

    assert read_text(reader, "/a.txt") == "v2"


def test_different_hash_keys_are_isolated() -> None:
    client = fakeredis.FakeRedis()
    first = RedisFilesBackend(client, key="team-a:files")
    second = RedisFilesBackend(client, key="team-b:files")

    first.write("/a.txt", "a")

    assert second.read("/a.txt").error is not None
    assert second.ls("/").entries == []
    assert client.hkeys("team-a:files") == [b"/a.txt"]


def test_default_hash_key() -> None:
    client = fakeredis.FakeRedis()
    RedisFilesBackend(client).write("/a.txt", "a")
    assert client.hkeys(DEFAULT_FILES_KEY) == [b"/a.txt"]


def test_recording_writes_collects_written_paths_once(backend: RedisFilesBackend) -> None:
    backend.write("/before.txt", "x")
    with recording_writes() as written:
        backend.write("/a.txt", "1")
        backend.write("/b.txt", "2")
        backend.write("/a.txt", "3")
        backend.edit("/b.txt", "2", "4")
        backend.upload_files([("/c.bin", b"\xff")])
        backend.read("/before.txt")
    backend.write("/after.txt", "y")

    assert written == ["/a.txt", "/b.txt", "/c.bin"]


def test_writes_outside_a_recording_block_are_not_collected(backend: RedisFilesBackend) -> None:
    with recording_writes() as outer:
        with recording_writes() as inner:
            backend.write("/inner.txt", "x")
        backend.write("/outer.txt", "y")
    assert inner == ["/inner.txt"]
    assert outer == ["/outer.txt"]


def test_files_backend_needs_a_url() -> None:
    with pytest.raises(FilesConfigError, match="no shared files configured"):
        files_backend(Settings(_env_file=None, redis_url=None, files_url=None))


def test_files_backend_refuses_other_schemes() -> None:
    with pytest.raises(FilesConfigError) as caught:
        files_backend(
            Settings(_env_file=None, redis_url="redis://localhost:6379/0", files_url="s3://bucket/x")
        )
    assert "'s3'" in str(caught.value)
    assert "s3://bucket/x" in str(caught.value)


def test_files_backend_takes_the_hash_key_from_the_fragment() -> None:
    """Building the backend does not connect, so no Redis is needed here."""
    named = files_backend(Settings(_env_file=None, files_url="redis://localhost:6390/2#team:files"))
    default = files_backend(Settings(_env_file=None, redis_url="redis://localhost:6390/2"))

    assert isinstance(named, RedisFilesBackend)
    assert isinstance(default, RedisFilesBackend)
    assert named.key == "team:files"
    assert default.key == DEFAULT_FILES_KEY
    assert named.client.connection_pool.connection_kwargs["db"] == 2
