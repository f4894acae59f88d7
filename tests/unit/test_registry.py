"""Loading the subagent registry by import path, and the checks that catch bad specs at start-up."""

from __future__ import annotations

from typing import Any, cast

import pytest
from deepagents.middleware.subagents import SubAgent

from shared.registry import (
    GENERAL_PURPOSE,
    RegistryError,
    effective_specs,
    import_object,
    load_registry,
    queue_name,
    validate_specs,
)
from tests.unit import registry_fixture

FIXTURE = "tests.unit.registry_fixture"


@pytest.mark.parametrize("path", [FIXTURE, f"{FIXTURE}:", ":SUBAGENTS", ""])
def test_path_must_name_module_and_attribute(path: str) -> None:
    with pytest.raises(RegistryError, match=r"must look like 'package\.module:NAME'"):
        import_object(path)


def test_missing_module() -> None:
    with pytest.raises(RegistryError, match=r"cannot import module 'tests\.unit\.no_such_module'"):
        import_object("tests.unit.no_such_module:SUBAGENTS")


def test_missing_attribute() -> None:
    with pytest.raises(RegistryError, match=rf"module '{FIXTURE}' has no attribute 'NOPE'"):
        import_object(f"{FIXTURE}:NOPE")


def test_import_object_returns_the_attribute() -> None:
    assert import_object(f"{FIXTURE}:SUBAGENTS") is registry_fixture.SUBAGENTS


@pytest.mark.parametrize(
    ("attribute", "type_name"), [("AS_DICT", "dict"), ("AS_STRING", "str"), ("NOT_A_LIST", "int")]
)
def test_registry_must_be_a_list(attribute: str, type_name: str) -> None:
    with pytest.raises(RegistryError, match=f"must be a list of subagent dicts, not {type_name}"):
        load_registry(f"{FIXTURE}:{attribute}")


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("ENTRY_NOT_A_DICT", "registry entry 1 is a str, not a dict"),
        ("NO_NAME", "registry entry 0 needs a non-empty string 'name'"),
        ("BLANK_NAME", "registry entry 0 needs a non-empty string 'name'"),
        ("NO_DESCRIPTION", "registry entry 0 needs a non-empty string 'description'"),
        ("DUPLICATE", "subagent name 'researcher' appears twice"),
        ("UNKNOWN_KEYS", "subagent 'researcher' has unknown keys ['budget', 'colour']"),
        ("MEMORY_NOT_A_LIST", "subagent 'librarian': 'memory' must be a list of absolute paths"),
        ("MEMORY_RELATIVE", "subagent 'librarian': 'memory' must be a list of absolute paths"),
        ("MODEL_OPTIONS_NOT_A_DICT", "subagent 'writer': 'model_options' must be a dict of arguments"),
        ("MODEL_OPTIONS_ON_AN_OBJECT", "'model_options' configures a model built from a string"),
        ("COMPILED", "registry entry 0 ('compiled'): compiled subagents cannot be rebuilt"),
        ("ASYNC", "registry entry 0 ('remote'): async (remote) subagents are not sent"),
    ],
)
def test_bad_entries_are_named(attribute: str, message: str) -> None:
    with pytest.raises(RegistryError) as caught:
        load_registry(f"{FIXTURE}:{attribute}")
    assert message in str(caught.value)


def test_valid_registry_loads() -> None:
    specs = load_registry(f"{FIXTURE}:SUBAGENTS")
    assert [spec["name"] for spec in specs] == ["researcher", "writer"]
    assert specs[0]["system_prompt"] == "Research."


def test_specs_may_name_agents_md_memory() -> None:
    assert load_registry(f"{FIXTURE}:WITH_MEMORY")[0]["memory"] == ["/memories/AGENTS.md"]  # type: ignore[typeddict-item]


def test_a_tuple_registry_is_accepted() -> None:
    assert [spec["name"] for spec in load_registry(f"{FIXTURE}:AS_TUPLE")] == ["researcher", "writer"]


def test_no_registry_means_no_subagents() -> None:
    assert load_registry(None) == []


def test_every_deepagents_key_is_accepted() -> None:
    spec: dict[str, Any] = {
        "name": "full",
        "description": "d",
        "system_prompt": "p",
        "tools": [],
        "model": "offline",
        "middleware": [],
        "interrupt_on": {},
        "skills": [],
    }
    assert validate_specs([spec]) == [spec]


def test_general_purpose_comes_first_by_default() -> None:
    specs = effective_specs(cast(list[SubAgent], registry_fixture.SUBAGENTS), general_purpose=True)
    assert [spec["name"] for spec in specs] == [GENERAL_PURPOSE, "researcher", "writer"]
    assert specs[0]["description"]
    assert specs[0]["tools"] == []


def test_general_purpose_can_be_turned_off() -> None:
    specs = effective_specs(cast(list[SubAgent], registry_fixture.SUBAGENTS), general_purpose=False)
    assert [spec["name"] for spec in specs] == ["researcher", "writer"]


def test_a_registry_general_purpose_replaces_the_default() -> None:
    own = {"name": GENERAL_PURPOSE, "description": "Ours.", "system_prompt": "Custom."}
    specs = effective_specs([registry_fixture.SUBAGENTS[0], own], general_purpose=True)  # type: ignore[list-item]
    assert [spec["name"] for spec in specs] == ["researcher", GENERAL_PURPOSE]
    assert specs[1]["description"] == "Ours."


def test_a_spec_may_name_its_queue() -> None:
    (shared, own) = validate_specs(
        [
            {"name": "a", "description": "x", "queue": "gpu-pool"},
            {"name": "b", "description": "y"},
        ]
    )
    assert (queue_name(shared), queue_name(own)) == ("gpu-pool", "b")


@pytest.mark.parametrize("queue", ["", "has space", "colon:name", 7, ".hidden"])
def test_a_queue_name_the_broker_cannot_tell_apart_is_refused(queue: object) -> None:
    with pytest.raises(RegistryError, match="'queue' must be a name"):
        validate_specs([{"name": "a", "description": "x", "queue": queue}])


def test_a_registry_in_a_package_named_like_one_of_taskforces_says_it_is_hidden() -> None:
    with pytest.raises(RegistryError, match=r"'shared' is one of taskforce's own packages.*rename yours"):
        import_object("shared.my_agents:SUBAGENTS")
