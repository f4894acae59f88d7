"""Token and cost budgets, spent by every model call of a run wherever it runs.

A budget is kept in Redis under `<prefix>:budget:<key>` (a hash of `tokens` and `cost`), so
that the main agent and every worker running its subagents spend from one account: `run:<thread>`
for a main agent's run, `item:<batch>:<item>` for a batch item (all its attempts), `batch:<batch>`
for a whole batch. Delegations carry the budgets they spend from (`BudgetRef`); a worker's
model call checks them before it goes out and charges them with the provider's count after.

Cost is what the deployment's price table says (`TASKFORCE_MODEL_PRICES`, per million tokens
by 'provider:model' or 'provider:*'); a model the table does not price costs nothing, which is
why a cost budget without a table is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import keys
from shared.ledger import as_text
from shared.model_limits import EVERY_MODEL_OF, ModelPrice
from shared.schemas import BudgetRef
from shared.settings import Settings

BUDGET_TTL_S = 7 * 86400
"""As long as a paused run may wait for its answer, and a batch for its next run."""


class Budget(BaseModel):
    """What a run, a batch item or a batch may spend on model calls; either cap may be left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _caps_something(self) -> Budget:
        if self.max_tokens is None and self.max_cost is None:
            raise ValueError("a budget needs max_tokens, max_cost or both")
        return self

    def ref(self, key: str) -> BudgetRef:
        return BudgetRef(key=key, max_tokens=self.max_tokens, max_cost=self.max_cost)


def price_of(model_key: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    provider = model_key.partition(":")[0]
    return prices.get(model_key) or prices.get(f"{provider}{EVERY_MODEL_OF}")


@dataclass(frozen=True)
class Spent:
    tokens: int
    cost: float

    def exhausts(self, ref: BudgetRef) -> bool:
        return (ref.max_tokens is not None and self.tokens >= ref.max_tokens) or (
            ref.max_cost is not None and self.cost >= ref.max_cost
        )


class BudgetConfigError(ValueError):
    """A budget these settings cannot keep."""


def require_prices(budgets: Iterable[Budget | None], prices: Mapping[str, ModelPrice]) -> None:
    if any(budget is not None and budget.max_cost is not None for budget in budgets) and not prices:
        raise BudgetConfigError(
            "budget: max_cost needs what models cost (TASKFORCE_MODEL_PRICES); without it every call costs 0"
        )


class BudgetExhaustedError(Exception):
    """A model call of a run whose budget is spent; the delegation ends `budget_exhausted`."""

    def __init__(self, ref: BudgetRef, spent: Spent) -> None:
        self.ref = ref
        self.spent = spent
        super().__init__(f"budget exhausted: {describe_spent(ref, spent)}")


def describe_spent(ref: BudgetRef, spent: Spent) -> str:
    caps = []
    if ref.max_tokens is not None:
        caps.append(f"{spent.tokens:,} of {ref.max_tokens:,} tokens")
    if ref.max_cost is not None:
        caps.append(f"{spent.cost:.4f} of {ref.max_cost:g} cost")
    return f"{ref.key} spent {', '.join(caps)}"


class Accounts:
    """Reads and charges budgets in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, prices: Mapping[str, ModelPrice]) -> None:
        self._client = client
        self._prefix = prefix
        self._prices = dict(prices)

    @classmethod
    def of(cls, client: redis.Redis, settings: Settings) -> Accounts:
        """The deployment's accounts, in `client`'s Redis, priced by its price table."""
        return cls(client, settings.queue_prefix, settings.model_prices)

    def _key(self, budget_key: str) -> str:
        return keys.budget(self._prefix, budget_key)

    def spent(self, key: str) -> Spent:
        found = self._client.hgetall(self._key(key))
        values = {as_text(name): as_text(value) for name, value in found.items()}
        return Spent(tokens=int(float(values.get("tokens", 0))), cost=float(values.get("cost", 0.0)))

    def exhausted(self, refs: Sequence[BudgetRef]) -> tuple[BudgetRef, Spent] | None:
        """The first of `refs` that is spent, with what it spent."""
        for ref in refs:
            spent = self.spent(ref.key)
            if spent.exhausts(ref):
                return ref, spent
        return None

    def require_unspent(self, refs: Sequence[BudgetRef]) -> None:
        """Raises `BudgetExhaustedError` naming the first of `refs` that is spent."""
        found = self.exhausted(refs)
        if found is not None:
            raise BudgetExhaustedError(*found)

    def charge(
        self, refs: Sequence[BudgetRef], model_key: str, input_tokens: int, output_tokens: int
    ) -> None:
        price = price_of(model_key, self._prices)
        cost = (
            (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6
            if price is not None
            else 0.0
        )
        with self._client.pipeline(transaction=False) as pipe:
            for ref in refs:
                key = self._key(ref.key)
                pipe.hincrby(key, "tokens", input_tokens + output_tokens)
                if cost:
                    pipe.hincrbyfloat(key, "cost", cost)
                pipe.expire(key, BUDGET_TTL_S)
            pipe.execute()
