"""Spec fingerprints: equal for the same spec rebuilt in another process (no memory addresses),
different exactly in the fields that differ."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.tools import tool

from shared.spec_digest import FIELDS, differing_fields, spec_digests


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


class _Middleware:
    name = "audit"


def _spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "researcher",
        "description": "finds things",
        "system_prompt": "Be thorough.",
        "model": GenericFakeChatModel(messages=iter([])),
        "tools": [lookup],
        "middleware": [_Middleware()],
        "skills": ["/skills/research/"],
    }
    return {**spec, **changes}


def test_the_same_spec_built_twice_has_the_same_digests() -> None:
    assert spec_digests(_spec()) == spec_digests(_spec())
    assert set(spec_digests(_spec())) == set(FIELDS)


def test_only_the_fields_that_differ_are_named() -> None:
    theirs = spec_digests(_spec(system_prompt="Be quick.", tools=[]))

    assert differing_fields(spec_digests(_spec()), theirs) == ["system_prompt", "tools"]


def test_a_spec_without_a_model_is_the_same_spec_whatever_the_default_model() -> None:
    """It runs on the main agent's model, which each delegation carries: the workers'
    TASKFORCE_MODEL plays no part in it."""
    spec = _spec()
    del spec["model"]

    assert differing_fields(spec_digests(spec), spec_digests(dict(spec))) == []
    assert differing_fields(spec_digests(spec), spec_digests(_spec())) == ["model"]


def test_an_older_sender_without_digests_checks_nothing() -> None:
    assert differing_fields({}, spec_digests(_spec())) == []
