"""String models are built as create_deep_agent builds them, except against an
OpenAI-compatible server."""

from __future__ import annotations

import pytest

from shared.models import OFFLINE, ModelConfigError, is_offline, make_model


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
