"""The wire format: JSON round trips, strict validation, and secrets that only `to_wire()` reveals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from shared.schemas import Delegation, FailureStatus, Limits, Report, TokenUsage
from shared.secrets import SecretBox, SecretsKeyError, new_key

SECRET = "sk-live-9f8e7d6c5b4a"
BOX = SecretBox(SecretStr(new_key()))


def make_delegation(**overrides: Any) -> Delegation:
    fields: dict[str, Any] = {
        "id": "thread-1:call_abc.2",
        "subagent_type": "researcher",
        "description": "Find the failing service",
        "context": {"tenant": "acme", "limits": {"rows": 10, "tags": ["a", None, 1.5, True]}},
        "secrets": {"api_key": SecretStr(SECRET)},
        "secret_str_keys": ("api_key",),
        "limits": Limits(timeout_s=30.5, report_max_chars=500, recursion_limit=40),
        "thread_id": "thread-1",
    }
    fields.update(overrides)
    return Delegation(**fields)


def wire_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(json.dumps(make_delegation().to_wire(BOX)))
    payload.update(overrides)
    return payload


def through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


def test_delegation_round_trips_through_json() -> None:
    original = make_delegation()

    restored = Delegation.model_validate(through_json(original.to_wire(BOX))).opened(BOX)

    assert restored == original
    assert restored.secrets["api_key"].get_secret_value() == SECRET
    assert restored.secret_str_keys == ("api_key",)
    assert restored.limits.timeout_s == 30.5
    assert restored.context["limits"] == {"rows": 10, "tags": ["a", None, 1.5, True]}


def test_report_round_trips_through_json() -> None:
    original = Report(
        delegation_id="d-1",
        subagent_type="writer",
        status="timeout",
        summary="cut short",
        full_report_path="/reports/writer/d-1.md",
        artifacts=("/out/a.md", "/out/b.md"),
        usage=TokenUsage(input_tokens=3, output_tokens=4, total_tokens=7),
        duration_s=1.25,
        attempts=2,
        worker="celery@host-a",
    )

    restored = Report.model_validate(through_json(original.model_dump(mode="json")))

    assert restored == original
    assert restored.artifacts == ("/out/a.md", "/out/b.md")
    assert restored.usage.total_tokens == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("surprise", "x"),
        ("version", 1),
        ("id", "has space"),
        ("id", "has/slash"),
        ("id", ""),
        ("subagent_type", ""),
        ("context_type", "os.system"),
        ("context_type", "a module:Name"),
    ],
)
def test_delegation_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Delegation.model_validate(wire_payload(**{field: value}))
    assert caught.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", -1.0),
        ("report_max_chars", 199),
        ("recursion_limit", 0),
        ("unexpected", 1),
    ],
)
def test_limits_reject_bad_values(field: str, value: object) -> None:
    limits = {"timeout_s": 10, "report_max_chars": 200, "recursion_limit": 5, field: value}
    with pytest.raises(ValidationError) as caught:
        Delegation.model_validate(wire_payload(limits=limits))
    assert caught.value.errors()[0]["loc"] == ("limits", field)


def test_limits_accept_the_boundary_values() -> None:
    limits = Limits(timeout_s=0.001, report_max_chars=200, recursion_limit=1)
    assert limits.report_max_chars == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("extra", 1), ("version", 1), ("status", "done"), ("attempts", 0), ("duration_s", -1)],
)
def test_report_rejects_bad_fields(field: str, value: object) -> None:
    payload = {"delegation_id": "d", "subagent_type": "w", "status": "ok", "summary": "s", field: value}
    with pytest.raises(ValidationError):
        Report.model_validate(payload)


def test_to_wire_seals_secrets_that_only_the_same_key_opens() -> None:
    wire = json.dumps(make_delegation().to_wire(BOX))
    assert SECRET not in wire

    other = SecretBox(SecretStr(new_key()))
    with pytest.raises(SecretsKeyError, match="another key"):
        Delegation.model_validate_json(wire).opened(other)
    assert Delegation.model_validate_json(wire).opened(BOX).secret_values() == [SECRET]


def test_secrets_cannot_be_sent_without_a_key() -> None:
    with pytest.raises(SecretsKeyError, match="TASKFORCE_SECRETS_KEY"):
        make_delegation().to_wire(SecretBox(None))
    assert make_delegation(secrets={}).to_wire(SecretBox(None))["secrets"] == {}


def test_a_secret_the_model_copied_into_the_description_is_neither_displayed_nor_sent_in_clear() -> None:
    delegation = make_delegation(description=f"call the API with {SECRET}")
    shown = delegation.redacted()
    assert SECRET not in json.dumps(shown)
    assert "call the API with **********" in shown["description"]

    wire = json.dumps(delegation.to_wire(BOX))
    assert SECRET not in wire
    assert Delegation.model_validate_json(wire).opened(BOX) == delegation
    assert not make_delegation().to_wire(BOX)["description_sealed"]


def test_secrets_never_shown_in_repr_str_or_redacted() -> None:
    delegation = make_delegation()

    redacted = delegation.redacted()

    assert SECRET not in repr(delegation)
    assert SECRET not in str(delegation)
    assert SECRET not in json.dumps(redacted)
    assert redacted["secrets"] == {"api_key": "**********"}
    # Everything else is still there for whoever inspects the job.
    assert redacted["context"]["tenant"] == "acme"
    assert redacted["id"] == "thread-1:call_abc.2"


def test_secret_values_lists_the_revealed_values() -> None:
    delegation = make_delegation(secrets={"a": SecretStr("one"), "b": SecretStr("two")})
    assert delegation.secret_values() == ["one", "two"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"version": 1, "leak": SECRET},
        {"id": f"bad id {SECRET}"},
        {"secrets": {"api_key": SECRET, "other": [SECRET]}},
        {"context": {"x": SECRET}, "limits": {"timeout_s": SECRET}},
    ],
)
def test_validation_errors_never_echo_the_payload(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        Delegation.model_validate(wire_payload(**overrides))
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_failure_copies_the_delegation_identity() -> None:
    delegation = make_delegation()

    report = Report.failure(delegation, "timeout", "took too long", worker="w-7", attempts=3)

    assert report.delegation_id == "thread-1:call_abc.2"
    assert report.subagent_type == "researcher"
    assert report.status == "timeout"
    assert report.summary == "took too long"
    assert (report.worker, report.attempts) == ("w-7", 3)


def test_tool_content_of_an_ok_report_is_the_summary() -> None:
    report = Report(delegation_id="d", subagent_type="writer", status="ok", summary="All good.")
    assert report.as_tool_content() == "All good."


@pytest.mark.parametrize("status", ["error", "timeout"])
def test_tool_content_of_a_failure_names_subagent_and_status(status: FailureStatus) -> None:
    report = Report(delegation_id="d", subagent_type="writer", status=status, summary="boom")
    assert report.as_tool_content() == f"Subagent 'writer' {status}: boom"


def test_tool_content_adds_report_path_and_artifacts() -> None:
    report = Report(
        delegation_id="d",
        subagent_type="writer",
        status="ok",
        summary="Preview",
        full_report_path="/reports/writer/d.md",
        artifacts=("/out/a.md", "/out/b.csv"),
    )
    assert report.as_tool_content() == (
        "Preview\n\nFull report: /reports/writer/d.md\n\nFiles written: /out/a.md, /out/b.csv"
    )


def test_tool_content_with_artifacts_only() -> None:
    report = Report(
        delegation_id="d", subagent_type="w", status="error", summary="half done", artifacts=("/x",)
    )
    assert report.as_tool_content() == "Subagent 'w' error: half done\n\nFiles written: /x"


def test_follow_up_messages_holding_a_secret_travel_sealed() -> None:
    delegation = make_delegation(
        conversation="task-1", continues="d-0", unanswered=(f"use {SECRET}", "plain")
    )

    wire = json.dumps(delegation.to_wire(BOX))

    assert SECRET not in wire
    assert SECRET not in json.dumps(delegation.redacted())
    assert Delegation.model_validate_json(wire).opened(BOX) == delegation


def test_a_continuation_outside_a_conversation_is_refused() -> None:
    with pytest.raises(ValidationError, match="belong to a conversation"):
        make_delegation(continues="d-0")
