"""The wire between orchestrator and workers: a `Delegation` goes out, a `Report` comes back.

Both are plain JSON with a version number so that the two sides can be deployed and upgraded
separately; anything that is not JSON is refused at the edge rather than half-serialised.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr, field_serializer

SCHEMA_VERSION: Literal[1] = 1

ReportStatus = Literal["ok", "error", "timeout"]


class _Wire(BaseModel):
    # hide_input_in_errors: a rejected payload may carry secrets, and validation errors end up
    # in logs and in Flower.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Limits(_Wire):
    """What the caller allows one delegation; the worker enforces each of them."""

    timeout_s: float = Field(gt=0)
    report_max_chars: int = Field(ge=200)
    recursion_limit: int = Field(ge=1)


class Delegation(_Wire):
    """One `task` call, as a worker needs it: no parent messages, no parent state."""

    version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    subagent_type: str = Field(min_length=1)
    description: str
    context: dict[str, JsonValue] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    secret_str_keys: tuple[str, ...] = ()
    limits: Limits
    thread_id: str | None = None

    @field_serializer("secrets", when_used="json")
    def _reveal_secrets_on_the_wire(self, secrets: dict[str, SecretStr]) -> dict[str, str]:
        # The worker needs the real values; everything that displays the message uses
        # `redacted()` instead.
        return {key: value.get_secret_value() for key, value in secrets.items()}

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def redacted(self) -> dict[str, Any]:
        """The message as Flower, logs and errors may show it."""
        shown = self.model_dump(mode="json", exclude={"secrets"})
        shown["secrets"] = dict.fromkeys(self.secrets, "**********")
        return shown

    def secret_values(self) -> list[str]:
        return [value.get_secret_value() for value in self.secrets.values()]


class TokenUsage(_Wire):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class Report(_Wire):
    """What comes back from one delegation: short enough for the parent's context window."""

    version: Literal[1] = SCHEMA_VERSION
    delegation_id: str
    subagent_type: str
    status: ReportStatus
    summary: str
    full_report_path: str | None = None
    artifacts: tuple[str, ...] = ()
    usage: TokenUsage = Field(default_factory=TokenUsage)
    duration_s: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=1, ge=1)
    worker: str = ""

    @classmethod
    def failure(
        cls,
        delegation: Delegation,
        status: Literal["error", "timeout"],
        message: str,
        **fields: Any,
    ) -> Report:
        return cls(
            delegation_id=delegation.id,
            subagent_type=delegation.subagent_type,
            status=status,
            summary=message,
            **fields,
        )

    def as_tool_content(self) -> str:
        """The text the parent model reads for this delegation."""
        if self.status == "ok":
            text = self.summary
        else:
            text = f"Subagent '{self.subagent_type}' {self.status}: {self.summary}"
        notes = []
        if self.full_report_path:
            notes.append(f"Full report: {self.full_report_path}")
        if self.artifacts:
            notes.append("Files written: " + ", ".join(self.artifacts))
        return "\n\n".join([text, *notes]) if notes else text
