"""What counts while a process runs on the settings an orchestrator handed it, and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from shared.settings import Settings
from shared.settings_handoff import HANDOFF_VARIABLE, SettingsHandOffError, dump_for_handoff
from tests.support.environment import clear_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever the developer exported, or keeps in a `.env`, must not join in."""
    clear_settings(monkeypatch)
    monkeypatch.chdir(tmp_path)


def hand_off(monkeypatch: pytest.MonkeyPatch, **values: object) -> Settings:
    handed = Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]
    monkeypatch.setenv(HANDOFF_VARIABLE, dump_for_handoff(handed))
    return handed


def test_the_handoff_carries_the_secrets_a_worker_uses_and_not_the_orchestrators_own() -> None:
    handed = Settings(
        secrets_key=SecretStr("key-SECRET-1"),
        database_url=SecretStr("postgresql://ops:hunter2@db/taskforce"),
        _env_file=None,  # type: ignore[call-arg]
    )

    document = dump_for_handoff(handed)

    assert "key-SECRET-1" in document
    assert "hunter2" not in document
    assert "database_url" not in document


def test_a_variable_for_a_setting_the_handoff_carries_is_refused_by_name_not_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hand_off(monkeypatch, model="offline")
    monkeypatch.setenv("TASKFORCE_MODEL", "openai:model-SECRET-2")
    monkeypatch.setenv("TASKFORCE_WORKERS", "5")

    with pytest.raises(SettingsHandOffError) as caught:
        Settings()

    assert str(caught.value).startswith(f"TASKFORCE_MODEL, TASKFORCE_WORKERS set beside {HANDOFF_VARIABLE}")
    assert "SECRET-2" not in str(caught.value)


def test_a_dotenv_counts_without_the_handoff_and_not_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator read it already; the hand-off is what it made of it, unset values included."""
    Path(".env").write_text("TASKFORCE_MODEL=openai:from-dotenv\nTASKFORCE_FILES_URL=memory://dotenv\n")
    assert Settings().model == "openai:from-dotenv"

    hand_off(monkeypatch, model="offline")

    settings = Settings()
    assert settings.model == "offline"
    assert settings.files_url is None


def test_values_given_in_code_beat_the_handoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """As they beat variables: they are the CLI's options."""
    hand_off(monkeypatch, model="offline", worker_concurrency=3)

    settings = Settings(model="openai:gpt-4.1-mini")

    assert settings.model == "openai:gpt-4.1-mini"
    assert settings.worker_concurrency == 3


def test_the_orchestrators_own_settings_still_come_from_their_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hand-off never carries them; a process given one, such as the CLI in the tests, reads
    them the usual way."""
    hand_off(monkeypatch, redis_url="redis://127.0.0.1:1/0")
    monkeypatch.setenv("TASKFORCE_DATABASE_URL", "postgresql://db/taskforce")

    settings = Settings()

    assert settings.redis_url == "redis://127.0.0.1:1/0"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://db/taskforce"


@pytest.mark.parametrize("document", ["{not json key-SECRET-3", '["key-SECRET-3"]'], ids=["broken", "list"])
def test_a_handoff_that_is_no_json_object_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, document: str
) -> None:
    monkeypatch.setenv(HANDOFF_VARIABLE, document)

    with pytest.raises(SettingsHandOffError, match=f"{HANDOFF_VARIABLE} is not a JSON object") as caught:
        Settings()

    assert "SECRET-3" not in str(caught.value)
