"""Runtime context on the wire: per-subagent namespacing, JSON checks and secret handling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from shared.context import (
    REDACTED,
    ContextError,
    context_for,
    rebuild_context,
    redact,
    validate_context,
)
from shared.schemas import Delegation, Limits

NAMES = ("researcher", "writer")


def test_plain_keys_reach_every_subagent() -> None:
    context = {"tenant": "acme", "rows": 3}
    for name in NAMES:
        assert context_for(name, context, NAMES, ()).values == {"tenant": "acme", "rows": 3}


def test_namespaced_key_reaches_only_its_subagent_without_prefix() -> None:
    context = {"researcher:k": "only-researcher"}

    researcher = context_for("researcher", context, NAMES, ())
    writer = context_for("writer", context, NAMES, ())

    assert researcher.values == {"k": "only-researcher"}
    assert writer.values == {}


def test_namespaced_key_overrides_plain_key_for_that_subagent_only() -> None:
    # The namespaced key comes first so that the override does not depend on insertion order.
    context = {"researcher:depth": 5, "depth": 1}

    assert context_for("researcher", context, NAMES, ()).values == {"depth": 5}
    assert context_for("writer", context, NAMES, ()).values == {"depth": 1}


def test_unknown_namespace_is_an_error_naming_key_and_subagents() -> None:
    with pytest.raises(ContextError) as caught:
        context_for("researcher", {"nobody:k": 1}, NAMES, ())
    message = str(caught.value)
    assert "'nobody:k'" in message
    assert "researcher, writer" in message


def test_empty_name_after_namespace_is_an_error() -> None:
    with pytest.raises(ContextError, match="'researcher:'"):
        context_for("writer", {"researcher:": 1}, NAMES, ())


@pytest.mark.parametrize(
    ("key", "value", "type_name"),
    [
        ("handle", object(), "object"),
        ("tags", {"a", "b"}, "set"),
        ("ratio", float("nan"), "float"),
        ("limit", float("inf"), "float"),
        ("nested", {"inner": b"bytes"}, "dict"),
    ],
)
def test_non_json_value_is_an_error_naming_the_key(key: str, value: object, type_name: str) -> None:
    with pytest.raises(ContextError) as caught:
        context_for("writer", {key: value}, NAMES, ())
    assert repr(key) in str(caught.value)
    assert f"holds a {type_name}" in str(caught.value)


def test_non_json_value_of_another_subagent_is_not_checked_for_this_one() -> None:
    piece = context_for("writer", {"researcher:handle": object(), "ok": 1}, NAMES, ())
    assert piece.values == {"ok": 1}


def test_secrets_travel_apart_from_values() -> None:
    context = {"token": "plain-but-listed", "db_password": SecretStr("s3cret"), "tenant": "acme"}

    piece = context_for("writer", context, NAMES, ("token",))

    assert piece.values == {"tenant": "acme"}
    assert {k: v.get_secret_value() for k, v in piece.secrets.items()} == {
        "token": "plain-but-listed",
        "db_password": "s3cret",
    }
    # Only keys passed as SecretStr come back as SecretStr on the worker.
    assert piece.secret_str_keys == ("db_password",)


def test_namespaced_secret_stays_secret() -> None:
    piece = context_for("researcher", {"researcher:api_key": SecretStr("k-1")}, NAMES, ())
    assert piece.values == {}
    assert piece.secrets["api_key"].get_secret_value() == "k-1"
    assert piece.secret_str_keys == ("api_key",)


@pytest.mark.parametrize("value", [12345, None, {"nested": "x"}])
def test_listed_secret_key_must_hold_a_string(value: object) -> None:
    with pytest.raises(ContextError) as caught:
        context_for("writer", {"password": value}, NAMES, ("password",))
    assert "'password'" in str(caught.value)
    assert type(value).__name__ in str(caught.value)


@dataclass(frozen=True)
class DataclassContext:
    tenant: str
    api_key: SecretStr


class ModelContext(BaseModel):
    tenant: str
    api_key: SecretStr


@pytest.mark.parametrize(
    "context",
    [
        DataclassContext(tenant="acme", api_key=SecretStr("k-9")),
        ModelContext(tenant="acme", api_key=SecretStr("k-9")),
    ],
    ids=["dataclass", "pydantic"],
)
def test_dataclass_and_pydantic_contexts_keep_secretstr_secret(context: object) -> None:
    piece = context_for("writer", context, NAMES, ())

    assert piece.values == {"tenant": "acme"}
    assert isinstance(piece.secrets["api_key"], SecretStr)
    assert piece.secrets["api_key"].get_secret_value() == "k-9"
    assert "k-9" not in repr(piece)


def test_no_context_is_an_empty_slice() -> None:
    piece = context_for("writer", None, NAMES, ())
    assert (piece.values, piece.secrets, piece.secret_str_keys) == ({}, {}, ())


@pytest.mark.parametrize("context", [["a", "b"], "text", 42])
def test_non_mapping_context_is_an_error(context: object) -> None:
    with pytest.raises(ContextError, match=type(context).__name__):
        context_for("writer", context, NAMES, ())


def test_rebuild_context_returns_secrets_in_the_type_they_were_passed() -> None:
    rebuilt = cast(
        dict[str, Any],
        rebuild_context(
            {"tenant": "acme"},
            {"as_secret": SecretStr("s-1"), "by_name": SecretStr("s-2")},
            ["as_secret"],
        ),
    )

    assert rebuilt["tenant"] == "acme"
    assert isinstance(rebuilt["as_secret"], SecretStr)
    assert rebuilt["as_secret"].get_secret_value() == "s-1"
    assert rebuilt["by_name"] == "s-2"
    assert type(rebuilt["by_name"]) is str


def test_context_for_then_rebuild_restores_the_callers_view() -> None:
    context = {"tenant": "acme", "token": "t-1", "key": SecretStr("k-1"), "writer:tenant": "other"}

    piece = context_for("writer", context, NAMES, ("token",))
    rebuilt = cast(dict[str, Any], rebuild_context(piece.values, piece.secrets, piece.secret_str_keys))

    assert rebuilt["tenant"] == "other"
    assert rebuilt["token"] == "t-1"
    assert rebuilt["key"] == SecretStr("k-1")


def test_redact_scrubs_every_secret() -> None:
    text = "user alice used pw hunter2 and key sk-abc to log in; hunter2 again"
    assert redact(text, ["hunter2", "sk-abc"]) == (
        f"user alice used pw {REDACTED} and key {REDACTED} to log in; {REDACTED} again"
    )


def test_redact_replaces_the_longest_overlapping_secret_first() -> None:
    # Shortest-first would leave "-suffix" of the longer secret in the text.
    text = "token=abc123-suffix"
    assert redact(text, ["abc123", "abc123-suffix"]) == f"token={REDACTED}"
    assert redact(text, ["abc123-suffix", "abc123"]) == f"token={REDACTED}"


def test_redact_ignores_empty_secrets() -> None:
    assert redact("nothing to hide", ["", "absent"]) == "nothing to hide"


def test_validate_context_checks_every_subagents_slice() -> None:
    # Only the writer's slice is broken, and it is still caught before any delegation.
    with pytest.raises(ContextError, match="'handle'"):
        validate_context({"writer:handle": object()}, NAMES, ())


@pytest.mark.parametrize("context", [{"nobody:k": 1}, ["not", "a", "mapping"], {"password": 1}])
def test_validate_context_raises_for_bad_input(context: object) -> None:
    with pytest.raises(ContextError):
        validate_context(context, NAMES, ("password",))


def test_validate_context_accepts_good_input_and_says_whether_it_carries_secrets() -> None:
    context = {"tenant": "acme", "researcher:depth": 2, "token": "t", "key": SecretStr("k")}
    assert validate_context(context, NAMES, ("token",)) is True
    assert validate_context({"tenant": "acme", "researcher:depth": 2}, NAMES, ("token",)) is False
    assert validate_context(None, NAMES, ()) is False


@pytest.mark.parametrize("value", [(1, 2), {1: "a"}], ids=["tuple", "int-key"])
def test_values_the_wire_would_refuse_are_refused_up_front(value: object) -> None:
    limits = Limits(timeout_s=1, report_max_chars=200, recursion_limit=1)
    with pytest.raises(ValidationError):
        Delegation(id="d", subagent_type="writer", description="x", context={"k": value}, limits=limits)  # type: ignore[dict-item]
    with pytest.raises(ContextError, match="'k'"):
        context_for("writer", {"k": value}, NAMES, ())


# Typed contexts: a dataclass or a pydantic model reaches the subagent as that type.


@dataclass(frozen=True)
class Account:
    tenant: str
    token: str
    key: SecretStr
    rows: int = 10
    label: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"{self.tenant}/{self.rows}")


class Profile(BaseModel):
    model_config = ConfigDict(extra="allow")

    tenant: str
    depth: int = 1
    key: SecretStr | None = None
    display_name: str = Field(default="", alias="displayName")


def _through_the_wire(subagent: str, context: object) -> object:
    piece = context_for(subagent, context, NAMES, ("token",))
    return rebuild_context(piece.values, piece.secrets, piece.secret_str_keys, piece.type_path)


def test_a_dataclass_context_is_rebuilt_as_itself_secrets_in_their_types() -> None:
    account = Account(tenant="acme", token="t-1", key=SecretStr("k-1"), rows=3)

    piece = context_for("writer", account, NAMES, ("token",))
    rebuilt = _through_the_wire("writer", account)

    assert piece.type_path == "tests.unit.test_context:Account"
    assert set(piece.secrets) == {"token", "key"}
    assert "t-1" not in repr(piece)
    assert rebuilt == account
    assert isinstance(rebuilt, Account)
    assert rebuilt.label == "acme/3"  # not an init field: computed again, not sent in
    assert isinstance(rebuilt.key, SecretStr)
    assert type(rebuilt.token) is str


def test_a_pydantic_context_is_rebuilt_as_itself_with_its_extras_namespaced() -> None:
    profile = Profile.model_validate(
        {"tenant": "acme", "displayName": "Acme", "key": SecretStr("k-2"), "researcher:depth": 4, "note": "n"}
    )

    researcher = _through_the_wire("researcher", profile)
    writer = _through_the_wire("writer", profile)

    assert isinstance(researcher, Profile)
    assert isinstance(writer, Profile)
    assert (researcher.depth, writer.depth) == (4, 1)
    assert researcher.display_name == writer.display_name == "Acme"  # by name, whatever the alias
    assert researcher.model_extra == writer.model_extra == {"note": "n"}
    assert isinstance(researcher.key, SecretStr)
    assert researcher.key.get_secret_value() == "k-2"


def test_a_typed_context_no_worker_can_import_is_refused_naming_it() -> None:
    @dataclass
    class Local:
        tenant: str

    with pytest.raises(ContextError, match=r"Local.*define the class at module level"):
        validate_context(Local(tenant="acme"), NAMES, ())


def test_a_mapping_context_has_no_type_to_rebuild() -> None:
    assert context_for("writer", {"tenant": "acme"}, NAMES, ()).type_path is None
    assert context_for("writer", None, NAMES, ()).type_path is None


@pytest.mark.parametrize("path", ["tests.unit.test_context:NAMES", "tests.unit.test_context:Nowhere"])
def test_a_worker_builds_only_dataclasses_and_pydantic_models(path: str) -> None:
    with pytest.raises(ContextError, match=path):
        rebuild_context({"tenant": "acme"}, {}, (), path)
