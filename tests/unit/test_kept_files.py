"""`taskforce run --resume` of a run that kept its shared files on disk (`--keep`, embedded
mode) looks for them there again, not in the new, empty embedded Redis."""

from __future__ import annotations

from pathlib import Path

from orchestrator.embedded import keep_files, kept_before
from shared.files.local import LocalStore
from shared.files.scopes import run_scope
from shared.settings import Settings


def _settings(data_dir: Path, **values: str) -> Settings:
    return Settings.model_validate({"data_dir": data_dir, **values})


def test_a_run_that_kept_files_in_the_data_directory_is_found_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    kept = keep_files(settings)
    assert kept.files_url is not None
    LocalStore.from_url(kept.files_url).scope(run_scope("run-1")).save("/notes.md", b"kept")
    assert kept_before(settings, "run-1")
    assert not kept_before(settings, "run-2")


def test_a_configured_store_is_never_second_guessed(tmp_path: Path) -> None:
    LocalStore.from_url(keep_files(_settings(tmp_path)).files_url or "").scope(run_scope("run-1")).save(
        "/notes.md", b"kept"
    )
    assert not kept_before(_settings(tmp_path, redis_url="redis://127.0.0.1:6379/0"), "run-1")
    assert not kept_before(_settings(tmp_path, files_url=(tmp_path / "other").as_uri()), "run-1")
