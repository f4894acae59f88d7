"""The wire between orchestrator and workers: a `Delegation` goes out, a `Report` comes back.

Both are plain JSON with a version number so that the two sides can be deployed and upgraded
separately; anything that is not JSON is refused at the edge rather than half-serialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr, model_validator

from shared.context import REDACTED, redact
from shared.secrets import SecretBox

SCHEMA_VERSION: Literal[5] = 5

ReportStatus = Literal[
    "ok", "interrupted", "error", "timeout", "cancelled", "dead_letter", "budget_exhausted"
]
FailureStatus = Literal["error", "timeout", "cancelled", "dead_letter", "budget_exhausted"]

DEFAULT_LEASE_S = 10.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_QUEUE_TIMEOUT_S = 3600.0


class _Wire(BaseModel):
    # hide_input_in_errors: a rejected payload may carry secrets, and validation errors end up
    # in logs and in Flower.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Limits(_Wire):
    """What the caller allows one delegation. Both sides derive every time limit from these
    (`shared.timing`), so a worker and the orchestrator never disagree about when a delegation is late."""

    timeout_s: float = Field(gt=0)
    report_max_chars: int = Field(ge=200)
    recursion_limit: int = Field(ge=1)
    lease_s: float = Field(default=DEFAULT_LEASE_S, ge=1)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, ge=1)
    queue_timeout_s: float = Field(default=DEFAULT_QUEUE_TIMEOUT_S, gt=0)


class BackendPart(_Wire):
    """One part of the main agent's backend, as a worker rebuilds it: `workspace` where
    deepagents' `StateBackend` keeps a thread's files (the run's shared workspace), `store` a
    `StoreBackend` on the subagent's store, `filesystem` a `FilesystemBackend` on a path every
    worker mounts, `shared` taskforce's own shared files."""

    kind: Literal["workspace", "store", "filesystem", "shared"]
    root_dir: str | None = None
    virtual_mode: bool | None = None


class BackendLayout(_Wire):
    """The main agent's `backend=`, which deepagents gives every subagent too: its default part
    and its routes by path prefix, as in a `CompositeBackend` (no routes: the part alone)."""

    default: BackendPart
    routes: dict[str, BackendPart] = Field(default_factory=dict)


class Inherited(_Wire):
    """What deepagents gives a subagent from the main agent when its spec leaves it out, in a
    form that travels: `create_orchestrator` decides per subagent type what applies, the worker
    lays it over the registry spec. Tools and model objects travel as import paths."""

    interrupt_on: dict[str, JsonValue] | None = None
    permissions: list[dict[str, JsonValue]] | None = None
    tools: tuple[str, ...] | None = None
    model: str | None = None
    model_path: str | None = None
    """A model object the main agent was given, by the import path workers load it from."""
    skills: list[str] | None = None
    store: bool = False
    """The main agent has the deployment's store (`shared.stores`): the worker gives the
    subagent the same store, opened from its own settings, as `runtime.store`."""
    backend: BackendLayout | None = None
    """The main agent's own `backend=`; unset, the shared files (`shared.files`)."""


class BudgetRef(_Wire):
    """A budget a delegation spends from, and its caps (`shared.budgets`)."""

    key: str = Field(min_length=1, max_length=400)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, gt=0)


class CallerRun(_Wire):
    """What of the caller's run its subagent's runs carry, as deepagents' in-process subagent
    inherits them from the `task` tool's config: the caller's tags and metadata (callbacks are
    objects and stay behind), and whether the caller traces to LangSmith, in which case the
    worker files the subagent's runs under the caller's `task` tool run (`shared.tracing`)."""

    traced: bool = False
    tags: tuple[str, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class Delegation(_Wire):
    """One `task` call, as a worker needs it: no parent messages, no parent state."""

    version: Literal[5] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    subagent_type: str = Field(min_length=1)
    description: str
    description_sealed: bool = False
    """On the wire: the description or an `unanswered` message held a secret value (a model
    copied it there), so they travel sealed like the secrets themselves."""
    context: dict[str, JsonValue] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    secret_str_keys: tuple[str, ...] = ()
    context_type: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """The import path of the runtime context's class when it was a dataclass or a pydantic
    model: the worker rebuilds the subagent's slice as an instance of it (`shared.context`)."""
    limits: Limits
    thread_id: str | None = None
    queue: str | None = None
    """Where the subagent's spec routes it (its `queue` key); unset, the subagent's own name."""
    spec: dict[str, str] = Field(default_factory=dict)
    """Digests of the spec the orchestrator offered, by field (`shared.spec_digest`): the
    worker runs the delegation only if its own spec matches."""
    inherited: Inherited = Field(default_factory=Inherited)
    store_namespaces: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """The namespace of each `store` part of `inherited.backend`, by its route prefix (`""`
    for the default part), as the main agent's `StoreBackend` computed it for this run."""
    caller: CallerRun = Field(default_factory=CallerRun)
    budgets: tuple[BudgetRef, ...] = ()
    """What its model calls spend from: its run's, its batch item's, its batch's."""
    resumes: str | None = None
    """The id of the delegation whose paused subagent this one continues, with `resume`: the
    answers to its interrupts by interrupt id, as `Command(resume=...)` takes them."""
    resume: dict[str, JsonValue] | None = None
    progress: bool = False
    """The caller streams subagents' steps: publish them (`shared.progress`)."""
    caller_async: bool = False
    """The main agent runs under `ainvoke`: deepagents runs its subagents async then, and so does
    the worker, whose trace and middleware hooks are then the async ones too."""
    conversation: str | None = None
    """An async task's id (`orchestrator.delegation.async_tasks`): the worker keeps the messages this run
    ends with under the task and this delegation's id, so that a follow-up can go on from them."""
    continues: str | None = None
    """With `conversation`: the earlier run of the task whose kept messages this run starts
    from; unset, the task's first run starts from a fresh context, as a `task` call does."""
    unanswered: tuple[str, ...] = ()
    """With `conversation`: messages sent to the task since that run that no run answered (it
    was cancelled or failed), given to the subagent before `description`, so none is lost."""

    @model_validator(mode="after")
    def _conversation_fields_together(self) -> Delegation:
        if self.conversation is None and (self.continues is not None or self.unanswered):
            raise ValueError("continues and unanswered belong to a conversation")
        return self

    def to_wire(self, box: SecretBox) -> dict[str, Any]:
        """The message as it travels and waits in Redis: secrets sealed with the shared key."""
        wire = self.model_dump(mode="json", exclude={"secrets"})
        wire["secrets"] = {key: box.seal(value) for key, value in self.secrets.items()}
        texts = [self.description, *self.unanswered]
        if any(redact(text, self.secret_values()) != text for text in texts):
            wire["description"] = box.seal(SecretStr(self.description))
            wire["unanswered"] = [box.seal(SecretStr(text)) for text in self.unanswered]
            wire["description_sealed"] = True
        return wire

    def opened(self, box: SecretBox) -> Delegation:
        """The worker's copy, with the sealed secrets of `to_wire()` opened again."""
        opened: dict[str, Any] = {
            "secrets": {key: box.open(value.get_secret_value()) for key, value in self.secrets.items()}
        }
        if self.description_sealed:
            opened |= {
                "description": box.open(self.description).get_secret_value(),
                "unanswered": tuple(box.open(text).get_secret_value() for text in self.unanswered),
                "description_sealed": False,
            }
        return self.model_copy(update=opened)

    def redacted(self) -> dict[str, Any]:
        """The message as Flower, logs and errors may show it: no secret value, not even one
        the model copied into the description."""
        shown = self.model_dump(mode="json", exclude={"secrets", "description_sealed"})
        shown["secrets"] = dict.fromkeys(self.secrets, REDACTED)
        shown["description"] = redact(self.description, self.secret_values())
        shown["unanswered"] = [redact(text, self.secret_values()) for text in self.unanswered]
        return shown

    def secret_values(self) -> list[str]:
        return [value.get_secret_value() for value in self.secrets.values()]


class TokenUsage(_Wire):
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)

    @classmethod
    def of_messages(cls, messages: Sequence[BaseMessage]) -> TokenUsage:
        """What the model calls behind these messages used, as their providers reported it."""
        totals = dict.fromkeys(cls.model_fields, 0)
        for message in messages:
            usage = getattr(message, "usage_metadata", None) or {}
            for key in totals:
                totals[key] += int(usage.get(key, 0))
        return cls(**totals)

    @classmethod
    def by_model(cls, messages: Sequence[BaseMessage]) -> dict[str, TokenUsage]:
        """`of_messages` per model, by the name its provider answered with."""
        found: dict[str, list[BaseMessage]] = {}
        for message in messages:
            if getattr(message, "usage_metadata", None):
                name = (getattr(message, "response_metadata", None) or {}).get("model_name") or "unknown"
                found.setdefault(str(name), []).append(message)
        return {name: cls.of_messages(some) for name, some in found.items()}

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            **{key: getattr(self, key) + getattr(other, key) for key in TokenUsage.model_fields}
        )


class ProviderRetry(_Wire):
    """Model calls the provider refused with `status` (429, an overloaded 5xx) or whose
    connection failed (`connection`), and that were tried again."""

    model: str
    status: str
    count: int = Field(ge=1)


class PendingApproval(_Wire):
    """One interrupt a paused subagent raised: `value` is what deepagents' human-in-the-loop
    middleware asks (its action requests and review configs)."""

    id: str
    value: JsonValue


class Report(_Wire):
    """What comes back from one delegation: short enough for the parent's context window."""

    version: Literal[5] = SCHEMA_VERSION
    delegation_id: str
    subagent_type: str
    status: ReportStatus
    summary: str
    full_report_path: str | None = None
    artifacts: tuple[str, ...] = ()
    usage: TokenUsage = Field(default_factory=TokenUsage)
    usage_by_model: dict[str, TokenUsage] = Field(default_factory=dict)
    """`usage`, by the model that used it (a subagent may call more than one)."""
    duration_s: float = Field(default=0.0, ge=0)
    model_wait_s: dict[str, float] = Field(default_factory=dict)
    """Seconds the subagent's model calls waited for the pool's capacity, by model
    ('provider:model'); part of `duration_s`."""
    provider_retries: tuple[ProviderRetry, ...] = ()
    attempts: int = Field(default=1, ge=1)
    worker: str = ""
    interrupts: tuple[PendingApproval, ...] = ()
    """With status `interrupted`: what the subagent waits for a human to answer."""

    @classmethod
    def failure(
        cls,
        delegation: Delegation,
        status: FailureStatus,
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
