"""String models are built as create_deep_agent builds them, except against an
OpenAI-compatible server."""

from __future__ import annotations

from typing import Any, cast

import pytest
from deepagents.middleware.subagents import SubAgent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from shared.files import shared_files
from shared.models import OFFLINE, ModelConfigError, is_offline, make_model, model_name
from shared.schemas import Inherited
from shared.settings import Settings
from workers.declarative import completed_spec


def test_openai_uses_the_responses_api_as_in_deepagents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    assert getattr(make_model("openai:gpt-4.1-mini"), "use_responses_api", None) is True


def test_an_openai_compatible_server_gets_chat_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")

    assert not getattr(make_model("openai:gpt-4.1-mini"), "use_responses_api", None)


def test_offline_and_unknown_models() -> None:
    assert is_offline(make_model(OFFLINE))
    with pytest.raises(ModelConfigError, match="cannot build model 'nosuch:thing'"):
        make_model("nosuch:thing")


def test_client_arguments_come_from_settings_by_model_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model_options={
            "*": {"max_retries": 6, "timeout": 120},
            "openai:local": {"base_url": "http://127.0.0.1:9/v1", "timeout": 30},
        },
    )

    local: Any = make_model("openai:local", settings.model_arguments("openai:local"))
    hosted: Any = make_model("openai:gpt-4.1-mini", settings.model_arguments("openai:gpt-4.1-mini"))

    assert (local.max_retries, local.request_timeout, local.openai_api_base) == (
        6,
        30,
        "http://127.0.0.1:9/v1",
    )
    assert not getattr(local, "use_responses_api", None)  # a base URL means chat completions
    assert (hosted.max_retries, hosted.request_timeout) == (6, 120)
    assert getattr(hosted, "use_responses_api", None) is True


def test_a_specs_own_options_override_the_settings() -> None:
    settings = Settings(_env_file=None, model_options={"*": {"timeout": 120, "max_retries": 1}})  # type: ignore[call-arg]

    assert settings.model_arguments("openai:x", {"timeout": 5}) == {"timeout": 5, "max_retries": 1}


def test_the_responses_api_can_be_kept_against_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")

    assert getattr(make_model("openai:x", {"use_responses_api": True}), "use_responses_api", None) is True


def test_a_bad_argument_is_one_line_without_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    with pytest.raises(ModelConfigError) as caught:
        make_model("openai:x", {"max_retries": "sk-very-secret"})

    assert "\n" not in str(caught.value)
    assert "max_retries" in str(caught.value)
    assert "sk-very-secret" not in str(caught.value)


def test_models_are_named_for_people() -> None:
    assert model_name(" openai:gpt-4.1 ") == "openai:gpt-4.1"
    assert model_name(make_model(OFFLINE)) == OFFLINE
    assert model_name(GenericFakeChatModel(messages=iter([]))) == "GenericFakeChatModel"


def test_a_worker_builds_each_subagents_model_with_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        files_url="memory://models",
        model_options={"openai:own": {"max_retries": 4}, "openai:main": {"max_retries": 9}},
    )
    backend = shared_files(settings).backend()
    own = {"name": "w", "description": "d", "model": "openai:own", "model_options": {"timeout": 7}}
    inheriting = {"name": "i", "description": "d", "model_options": {"timeout": 8}}

    built = [
        completed_spec(
            cast(SubAgent, spec), Inherited(model="openai:main"), OFFLINE, backend, settings.model_arguments
        )
        for spec in (own, inheriting)
    ]

    models = [cast(Any, spec["model"]) for spec in built]
    assert [(m.model_name, m.max_retries, m.request_timeout) for m in models] == [
        ("own", 4, 7),
        ("main", 9, 8),
    ]
