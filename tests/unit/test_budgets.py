"""Budget accounts against a real Redis, and which accounts a run spends from. (Budgets on real
workers stopping a fan-out: tests/provider/test_budgets.py.)"""

from __future__ import annotations

import pytest
import redis
from pydantic import ValidationError

from orchestrator.budgets import RunBudgets
from shared.budgets import Accounts, Budget, BudgetConfigError, require_prices
from shared.model_limits import ModelPrice

PRICES = {
    "openai:gpt-4.1-mini": ModelPrice(input_per_million=0.4, output_per_million=1.6),
    "anthropic:*": ModelPrice(input_per_million=3.0, output_per_million=15.0),
}


def test_charges_add_up_tokens_and_cost_by_the_price_table(unit_redis: str) -> None:
    accounts = Accounts(redis.Redis.from_url(unit_redis), "tfunit", PRICES)
    refs = (Budget(max_tokens=10_000).ref("run:a"), Budget(max_cost=1.0).ref("batch:b"))

    accounts.charge(refs, "openai:gpt-4.1-mini", 1_000_000, 500_000)
    accounts.charge(refs, "anthropic:claude-sonnet-4", 1000, 0)
    accounts.charge(refs, "openai:unpriced", 10, 10)

    run, batch = accounts.spent("run:a"), accounts.spent("batch:b")
    assert run.tokens == batch.tokens == 1_501_020
    assert run.cost == pytest.approx(0.4 + 0.8 + 0.003)
    found = accounts.exhausted(refs)
    assert found is not None
    assert found[0].key == "run:a", "the first spent budget is the one named"


def test_a_budget_is_exhausted_once_spent_to_its_cap_not_before(unit_redis: str) -> None:
    accounts = Accounts(redis.Redis.from_url(unit_redis), "tfunit", PRICES)
    refs = (Budget(max_tokens=100).ref("item:b:1"),)

    accounts.charge(refs, "openai:gpt-4.1-mini", 60, 39)
    assert accounts.exhausted(refs) is None
    accounts.charge(refs, "openai:gpt-4.1-mini", 1, 0)
    assert accounts.exhausted(refs) is not None


def test_a_run_spends_from_its_thread_or_its_batch_item_and_its_batch() -> None:
    budgets = RunBudgets(run=Budget(max_tokens=5), batch=Budget(max_tokens=50))

    alone = budgets.refs({"configurable": {"thread_id": "run-1"}}, {})
    in_batch = budgets.refs(
        {
            "configurable": {"thread_id": "b7:item-3:2"},
            "metadata": {"taskforce_batch_id": "b7", "taskforce_item_id": "item-3"},
        },
        {},
    )

    assert [ref.key for ref in alone] == ["run:run-1"]
    assert [(ref.key, ref.max_tokens) for ref in in_batch] == [("item:b7:item-3", 5), ("batch:b7", 50)]
    assert not RunBudgets()


def test_a_budget_caps_something_and_a_cost_budget_needs_prices() -> None:
    with pytest.raises(ValidationError, match="max_tokens, max_cost or both"):
        Budget()
    with pytest.raises(BudgetConfigError, match="TASKFORCE_MODEL_PRICES"):
        require_prices([None, Budget(max_cost=2.0)], {})
    require_prices([Budget(max_cost=2.0)], PRICES)
    require_prices([Budget(max_tokens=2)], {})
