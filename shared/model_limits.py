"""What a model provider allows, as the deployment declares it (`TASKFORCE_MODEL_LIMITS`), and
what it charges (`TASKFORCE_MODEL_PRICES`).

A provider's limits are the pool's, not one process's: requests and tokens per minute are
counted against an API key wherever the calls come from, and so must be the caps. Each entry
names a bucket that every worker and main agent of the deployment counts into, in Redis
(`shared.rate_limiter`): `"openai:gpt-4.1-mini"` is that model's, `"openai:*"` every model of
the provider, which is how one API key shared by several models is bounded. A call passes every
bucket that matches its model.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, model_validator

EVERY_MODEL_OF = ":*"
"""The suffix of a bucket that every model of a provider counts into."""


class ModelLimit(BaseModel):
    """The caps of one bucket; a cap left out is not enforced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    max_concurrency: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _caps_something(self) -> ModelLimit:
        if (
            self.requests_per_minute is None
            and self.tokens_per_minute is None
            and self.max_concurrency is None
        ):
            raise ValueError("set at least one of requests_per_minute, tokens_per_minute, max_concurrency")
        return self


class ModelPrice(BaseModel):
    """What a model costs (`TASKFORCE_MODEL_PRICES`), for cost budgets (`shared.budgets`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


def check_bucket_name(name: str) -> str:
    provider, colon, model = name.partition(":")
    if not (provider and colon and model) or "*" in provider or ("*" in model and model != "*"):
        raise ValueError(f"limit {name!r} must name 'provider:model' or 'provider:*'")
    return name


def buckets_of(model_key: str, limits: Mapping[str, ModelLimit]) -> dict[str, ModelLimit]:
    """The buckets a call to `model_key` ('provider:model') counts into."""
    provider = model_key.partition(":")[0]
    return {
        name: limit for name, limit in limits.items() if name in {model_key, f"{provider}{EVERY_MODEL_OF}"}
    }
