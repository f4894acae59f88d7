"""One settings object for both sides, read from `TASKFORCE_*` variables (and an optional `.env`).

Workers on other machines are configured by the same variables as the orchestrator, so a
deployment is a matter of exporting the same environment everywhere. The workers an orchestrator
starts itself get its settings in one variable instead (`shared.settings_handoff`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from shared.model_limits import ModelLimit, ModelPrice, check_bucket_name
from shared.schemas import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, DEFAULT_QUEUE_TIMEOUT_S, Limits
from shared.settings_handoff import handed_off

DEFAULT_SECRET_KEYS = ("api_key", "password", "secret", "token", "access_token", "private_key")

WorkerPool = Literal["threads", "prefork", "solo"]
EVERY_MODEL = "*"
"""The `TASKFORCE_MODEL_OPTIONS` key whose arguments every model string gets."""
ENV_PREFIX = "TASKFORCE_"


def setting_variable(field: str) -> str:
    """The environment variable a setting is read from, as messages name it."""
    return f"{ENV_PREFIX}{field}".upper()


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "taskforce"


class Settings(BaseSettings):
    """Every knob taskforce has; defaults suit one machine and the embedded Redis."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="Broker, results and shared files. Unset: the CLI starts a private Redis.",
    )
    files_url: str | None = Field(
        default=None,
        description="Shared files backend; unset means the same Redis as redis_url.",
    )
    files_workspace_ttl: int = Field(
        default=7 * 86400,
        ge=0,
        description="Seconds a run's workspace files live after their last write; 0 keeps them.",
    )
    files_routes: dict[str, str] = Field(
        default_factory=dict,
        description='More stores mounted at path prefixes, as JSON: {"/datasets/": "s3://bucket/data"}.',
    )
    model: str = Field(default="offline", description="init_chat_model string, or 'offline'.")
    subagent_model: str | None = Field(
        default=None,
        description="Model of every subagent whose spec names none (general-purpose included); "
        "unset: the main agent's, as in deepagents.",
    )
    model_options: dict[str, dict[str, JsonValue]] = Field(
        default_factory=dict,
        description="Model client arguments by model string ('*': every model), as JSON: "
        '{"*": {"max_retries": 6, "timeout": 120}, "openai:llama": {"base_url": "http://gpu:8000/v1"}}.',
    )
    model_limits: dict[str, ModelLimit] = Field(
        default_factory=dict,
        description="The provider's limits, shared by every worker and main agent, as JSON: "
        '{"openai:gpt-4.1-mini": {"requests_per_minute": 500, "tokens_per_minute": 200000, '
        '"max_concurrency": 16}, "openai:*": {...}} ("provider:*": every model of the provider).',
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="What models cost, per million tokens, for cost budgets, as JSON: "
        '{"openai:gpt-4.1-mini": {"input_per_million": 0.4, "output_per_million": 1.6}}.',
    )
    model_slot_lease: float = Field(
        default=30.0,
        ge=1,
        description="Seconds a model call's concurrency slot outlives a worker that stopped renewing it.",
    )
    subagents: str | None = Field(
        default=None,
        description="Import path of the subagent registry, e.g. 'myapp.agents:SUBAGENTS'.",
    )
    general_purpose: bool = Field(
        default=True, description="Offer deepagents' general-purpose subagent (run on workers)."
    )
    queue_prefix: str = Field(default="taskforce", pattern=r"^[A-Za-z0-9_.-]+$")
    delegation_timeout: float = Field(
        default=900.0, gt=0, description="Seconds one subagent run may take on a worker."
    )
    queue_timeout: float = Field(
        default=DEFAULT_QUEUE_TIMEOUT_S,
        gt=0,
        description="Seconds a delegation may wait for a free worker; its message expires afterwards.",
    )
    lease: float = Field(
        default=DEFAULT_LEASE_S,
        ge=1,
        description="Seconds a running delegation survives its worker's silence before another takes it.",
    )
    max_attempts: int = Field(
        default=DEFAULT_MAX_ATTEMPTS,
        ge=1,
        description="Attempts lost to dying workers before a delegation is dead-lettered.",
    )
    redis_outage: float = Field(
        default=60.0,
        gt=0,
        description="Seconds Redis may be unreachable (restart, failover) before sends and waits give up.",
    )
    worker_shutdown_grace: float = Field(
        default=20.0,
        ge=0,
        description="Seconds a stopping worker lets running delegations finish before handing them back.",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts secret context values in broker messages "
        "(`taskforce secrets-key` makes one); the embedded mode makes its own.",
    )
    flower_basic_auth: SecretStr | None = Field(
        default=None,
        description="`user:password` (several: comma-separated) that `taskforce flower` requires; "
        "unset: Flower listens on loopback only.",
        # Excluded settings are the orchestrator side's alone: never dumped, never passed to a
        # worker (see `orchestrator.embedded.worker_environment`). Only `taskforce flower` reads it.
        exclude=True,
    )
    report_max_chars: int = Field(
        default=4000, ge=200, description="Longer reports are cut here; the full text goes to files."
    )
    secret_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SECRET_KEYS,
        description="Context keys whose values are secret even when passed as plain strings.",
    )
    workers: int = Field(default=2, ge=1, description="Worker processes the embedded mode starts.")
    worker_concurrency: int = Field(default=64, ge=1, description="Delegations one worker runs at once.")
    worker_pool: WorkerPool = "threads"
    task_events: bool = Field(
        default=True,
        description="Celery task events, which only Flower reads; off saves each delegation "
        "two event messages.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL for the main agent's checkpoints (postgresql://...); unset: SQLite "
        "in the data directory.",
        exclude=True,  # workers never checkpoint, so they never see its password
    )
    store_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL (postgresql://...) of the LangGraph store the main agent and every "
        "subagent share as runtime.store (a langgraph PostgresStore); unset: taskforce's SharedStore "
        "on TASKFORCE_REDIS_URL.",
    )
    result_expires: int = Field(default=86400, ge=60, description="Seconds reports stay in Redis.")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of each `taskforce worker`'s and `taskforce main-worker`'s Prometheus "
        "endpoint (its own counts; `taskforce metrics` shows the pool's); unset: none.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """A local worker runs on exactly the settings its orchestrator handed it, whatever else
        its environment or `.env` says (see `shared.settings_handoff` for what still counts)."""
        handoff = handed_off(settings_cls, env_settings)
        if handoff is not None:
            return init_settings, handoff
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_secret_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("files_routes")
    @classmethod
    def _check_routes(cls, routes: dict[str, str]) -> dict[str, str]:
        for prefix in routes:
            if not (prefix.startswith("/") and prefix.endswith("/") and len(prefix) > 2):
                raise ValueError(f"route {prefix!r} must look like '/name/'")
            if prefix in {"/memories/", "/skills/"}:
                raise ValueError(f"route {prefix!r} is taskforce's own; pick another prefix")
        return routes

    @field_validator("model_limits", "model_prices")
    @classmethod
    def _check_model_names(cls, by_model: dict[str, Any]) -> dict[str, Any]:
        for name in by_model:
            check_bucket_name(name)
        return by_model

    @field_validator("flower_basic_auth")
    @classmethod
    def _check_basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        """Flower would otherwise start with credentials nobody can type, and say nothing."""
        if value is None:
            return value
        for credential in value.get_secret_value().split(","):
            user, colon, password = credential.partition(":")
            if not (user and colon and password):
                # The message must not echo the value: it holds a password.
                raise ValueError("must be user:password, several separated by commas")
        return value

    def model_arguments(self, model: str, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The client arguments of `model`: those for every model, then those for this model
        string, then `own` (a spec's `model_options`), each overriding the one before."""
        return {
            **self.model_options.get(EVERY_MODEL, {}),
            **self.model_options.get(model.strip(), {}),
            **(own or {}),
        }

    @property
    def subagents_default_model(self) -> str:
        """What a subagent whose spec names no model runs on."""
        return self.subagent_model or self.model

    def limits(self, recursion_limit: int) -> Limits:
        """What these settings allow one delegation; `shared.timing` derives every time limit
        from it."""
        return Limits(
            timeout_s=self.delegation_timeout,
            report_max_chars=self.report_max_chars,
            recursion_limit=recursion_limit,
            lease_s=self.lease,
            max_attempts=self.max_attempts,
            queue_timeout_s=self.queue_timeout,
        )
