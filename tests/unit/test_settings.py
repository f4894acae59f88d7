"""Settings from `TASKFORCE_*` variables, the same on every machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import DEFAULT_SECRET_KEYS, Settings
from shared.timing import timing
from tests.support.environment import clear_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer exported must not leak into the defaults under test."""
    clear_settings(monkeypatch)


def load(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def test_secret_keys_from_a_comma_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFORCE_SECRET_KEYS", "a, b,,c")
    assert load().secret_keys == ("a", "b", "c")


def test_secret_keys_from_python() -> None:
    assert load(secret_keys=["x", "y"]).secret_keys == ("x", "y")
    assert load(secret_keys="x , y").secret_keys == ("x", "y")


def test_other_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFORCE_REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("TASKFORCE_WORKERS", "5")
    monkeypatch.setenv("TASKFORCE_GENERAL_PURPOSE", "false")

    settings = load()

    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.workers == 5
    assert settings.general_purpose is False


def test_defaults() -> None:
    settings = load()
    assert settings.model == "offline"
    assert settings.redis_url is None
    assert settings.files_url is None
    assert settings.subagents is None
    assert settings.secret_keys == DEFAULT_SECRET_KEYS
    assert settings.general_purpose is True


@pytest.mark.parametrize("timeout", [0.5, 900.0, 86400.0])
@pytest.mark.parametrize("lease", [1.0, 10.0, 120.0])
def test_time_limits_nest(timeout: float, lease: float) -> None:
    """A message must not come back while its job can still legitimately be running, and the
    orchestrator must not give up on an attempt before the worker's own deadline and report."""
    limits = timing(load(delegation_timeout=timeout, lease=lease).limits(recursion_limit=5))
    assert timeout < limits.soft_limit_s < limits.hard_limit_s < limits.attempt_budget_s
    assert limits.visibility_timeout_s > limits.hard_limit_s
    assert limits.refresh_s * 3 <= limits.lease_s


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("worker_concurrency", 0),
        ("queue_prefix", "has space"),
        ("queue_prefix", ""),
        ("delegation_timeout", 0),
        ("report_max_chars", 199),
        ("worker_pool", "gevent"),
        ("result_expires", 59),
    ],
)
def test_invalid_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        load(**{field: value})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_invalid_value_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKFORCE_QUEUE_PREFIX", "two words")
    with pytest.raises(ValidationError):
        load()


def test_flower_basic_auth_takes_user_password_pairs() -> None:
    assert load(flower_basic_auth="ops:pw,viewer:pa:ss").flower_basic_auth is not None


@pytest.mark.parametrize("value", ["hunter2", ":hunter2", "ops:", "ops:hunter2,", "ops:hunter2,viewer"])
def test_flower_basic_auth_refuses_what_nobody_could_log_in_with_without_echoing_it(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(flower_basic_auth=value)

    assert "user:password" in str(caught.value)
    assert "hunter2" not in str(caught.value.errors(include_input=False))
