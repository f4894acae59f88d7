"""`taskforce files` on a `file://` store, and pruning old run workspaces."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import cli
from shared.files import SharedFiles, read_text
from shared.files.local import LocalStore


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "files"
    monkeypatch.setenv("TASKFORCE_FILES_URL", f"file://{directory}")
    monkeypatch.delenv("TASKFORCE_REDIS_URL", raising=False)
    return directory


def test_put_ls_and_cat_see_what_agents_see(store_dir: Path, tmp_path: Path) -> None:
    skill = tmp_path / "SKILL.md"
    skill.write_text("---\nname: triage\ndescription: triage playbook\n---\n")
    runner = CliRunner()

    put = runner.invoke(cli, ["files", "put", str(skill), "/skills/triage/SKILL.md"])
    note = runner.invoke(cli, ["files", "put", str(skill), "/notes/a.md", "--run", "run-1"])
    listing = runner.invoke(cli, ["files", "ls", "/", "--run", "run-1"])
    shown = runner.invoke(cli, ["files", "cat", "/skills/triage/SKILL.md"])
    missing = runner.invoke(cli, ["files", "cat", "/notes/a.md"])  # the default run's workspace

    assert (put.exit_code, note.exit_code, listing.exit_code, shown.exit_code) == (0, 0, 0, 0)
    assert "/notes/" in listing.stdout
    assert "/skills/" in listing.stdout
    assert shown.stdout.startswith("---\nname: triage")
    assert missing.exit_code == 2
    assert (store_dir / "skills" / "triage" / "SKILL.md").is_file()


def test_prune_deletes_only_workspaces_nobody_wrote_to_lately(tmp_path: Path) -> None:
    files = SharedFiles(LocalStore(tmp_path))
    files.for_run("old-run").write("/a.txt", "a")
    files.for_run("new-run").write("/b.txt", "b")
    files.for_run("old-run").write("/memories/keep.md", "long-term")
    two_days_ago = time.time() - 2 * 86400
    os.utime(tmp_path / "runs" / "old-run" / "a.txt", (two_days_ago, two_days_ago))

    assert files.prune(86400) == ["old-run"]
    assert files.for_run("old-run").read("/a.txt").error is not None
    assert read_text(files.for_run("new-run"), "/b.txt") == "b"
    assert read_text(files.memories, "/keep.md") == "long-term"
    assert files.prune(60, now=datetime.now(UTC) + timedelta(days=1)) == ["new-run"]


def test_prune_from_the_cli(store_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["files", "prune", "--older-than", "60"])

    assert result.exit_code == 0
    assert "pruned 0 workspace(s)" in result.stdout


def test_ls_gives_each_file_its_size_and_each_directory_a_trailing_slash(
    store_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "five.md"
    source.write_text("hello")
    runner = CliRunner()
    assert runner.invoke(cli, ["files", "put", str(source), "/notes/a.md"]).exit_code == 0

    top = runner.invoke(cli, ["files", "ls"])
    notes = runner.invoke(cli, ["files", "ls", "/notes"])

    assert (top.exit_code, notes.exit_code) == (0, 0)
    assert re.search(r"│ /notes/\s+│\s+│\s+│", top.stdout)  # a directory: no size, no date
    assert re.search(r"│ /notes/a\.md\s+│ 5\s+│ \d{4}-\d\d-\d\dT", notes.stdout)


def test_cat_writes_the_file_exactly_as_stored(store_dir: Path, tmp_path: Path) -> None:
    """Not through rich: square brackets are no markup, and no newline is added."""
    text = "[bold]not bold[/bold] café\nlast line without newline"
    source = tmp_path / "note.md"
    source.write_text(text, encoding="utf-8")
    runner = CliRunner()
    runner.invoke(cli, ["files", "put", str(source), "/note.md"])

    shown = runner.invoke(cli, ["files", "cat", "/note.md"])

    assert shown.exit_code == 0
    assert shown.stdout == text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["ls", "notes"], "Invalid value for PATH: Error: invalid_path: path must be absolute"),
        (["put", "{source}", "/"], "Invalid value for PATH: /: is_directory"),
        (["put", "{source}", "notes/a.md"], "Invalid value for PATH: notes/a.md: invalid_path"),
        (["cat", "/notes"], "Invalid value for PATH: /notes: is_directory"),
        (["cat", "/notes/b.md"], "Invalid value for PATH: /notes/b.md: file_not_found"),
    ],
)
def test_a_path_the_files_refuse_is_a_usage_error_naming_it(
    store_dir: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    source = tmp_path / "a.md"
    source.write_text("a")
    runner = CliRunner()
    assert runner.invoke(cli, ["files", "put", str(source), "/notes/a.md"]).exit_code == 0

    result = runner.invoke(cli, ["files", *(a.format(source=source) for a in arguments)])

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())  # the error box wraps long lines


def test_prune_keeps_workspaces_younger_than_the_workspace_ttl_setting(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKFORCE_FILES_WORKSPACE_TTL", "3600")
    files = SharedFiles(LocalStore(store_dir))
    files.for_run("old-run").write("/a.txt", "a")
    files.for_run("new-run").write("/b.txt", "b")
    two_hours_ago = time.time() - 7200
    os.utime(store_dir / "runs" / "old-run" / "a.txt", (two_hours_ago, two_hours_ago))

    result = CliRunner().invoke(cli, ["files", "prune"])

    assert result.exit_code == 0
    assert "pruned 1 workspace(s): old-run" in result.stdout
    assert read_text(files.for_run("new-run"), "/b.txt") == "b"
